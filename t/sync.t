#!/usr/bin/perl
# Several nginx, one session table, through Redis: a session learned on one
# LB routes on the other; a client alternating between them keeps every
# session; an LB restarted without state= gets the live sessions back; Redis
# killed mid-traffic fails no request and the sessions learned meanwhile
# reach the other LB once it is back; no raw id ever reaches Redis; an LB
# with another key never misroutes and says so; expiry stays coherent both
# ways; a reload keeps one subscription per LB.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of sid_of sticky_of secret_file sync_status wait_for);

plan skip_all => 'redis-server not installed (make test installs it)'
    unless grep { -x "$_/redis-server" } split /:/, $ENV{PATH};

# The application servers and Redis, shared by every LB.
my $apps = StickyTest->new;
$apps->write_config(<<'CONF');
http {
    access_log off;
    %%BACKENDS(B1,B2,B3)%%
}
CONF
$apps->run;
my $redis = $apps->redis;
my $dir = $apps->dir;

sub key_file {
    my ($name, $content, $mode) = @_;
    return secret_file("$dir/$name", $content, $mode);
}
my $key = key_file('sync.key', "8f1d2c3b4a59687766554433221100ffeeddccbbaa\n");

sub lb {
    my (%o) = @_;
    my $lb = StickyTest->new;
    my $servers = join '', map { "        server 127.0.0.1:" . $apps->port("B$_") . ";\n" } 1 .. 3;
    my $timeout = $o{timeout} // '1h';
    my $k = $o{key} // $key;
    my $extra = $o{extra} // '';
    $lb->write_config(<<"CONF");
worker_processes 2;
http {
    access_log off;
    upstream app {
        sticky_session name=sid zone=shop:1m timeout=$timeout sync=redis://127.0.0.1:$redis sync_key=$k $extra;
$servers    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%% reuseport;
        location / {
            proxy_pass http://app;
            add_header X-Sticky \$sticky_session_status always;
        }
        location = /status { sticky_session_status; }
    }
}
CONF
    return $lb->run;
}

# A new session through $lb: (id, backend).
sub new_session {
    my ($lb) = @_;
    my $r = $lb->get('/');
    return (sid_of($r), backend_of($r));
}

# Ids whose requests through $lb do not reach their backend as a HIT.
sub misrouted {
    my ($lb, $sessions) = @_;
    my @bad;
    for my $id (sort keys %$sessions) {
        my $r = $lb->get("/n?sid=$id");
        push @bad, "$id: want $sessions->{$id}, got " . backend_of($r) . ' ' . sticky_of($r)
            unless backend_of($r) eq $sessions->{$id} && sticky_of($r) eq 'HIT';
    }
    return \@bad;
}

# --- nginx -t explains bad sync settings --------------------------------
{
    my $t = StickyTest->new;
    my $open = key_file('open.key', "0123456789abcdef0123456789\n", 0644);
    my $short = key_file('short.key', "tooshort\n");
    for my $case (
        ["sync=redis://127.0.0.1:$redis", qr/"sync" needs "sync_key=FILE"/],
        ["sync=redis://127.0.0.1:$redis sync_key=$open", qr/"\Q$open\E" must not be readable by others/],
        ["sync=redis://127.0.0.1:$redis sync_key=$short", qr/holds 8 bytes, at least 16/],
        ["sync=redis://127.0.0.1:$redis sync_key=$dir/missing.key", qr/cannot open "\Q$dir\E\/missing.key"/],
        ["sync=redis://u:pw\@127.0.0.1 sync_key=$key", qr/credentials belong in "sync_auth=FILE"/],
    ) {
        my ($params, $want) = @$case;
        $t->write_config(<<"CONF");
http {
    upstream app { sticky_session name=sid $params; server 127.0.0.1:1; }
    server { listen 127.0.0.1:%%PORT_FRONT%%; location / { proxy_pass http://app; } }
}
CONF
        my ($ok, $out) = $t->test_config;
        ok(!$ok, "refused: $params");
        like($out, $want, 'says why');
        my $conf = $t->conf_path;
        my ($line) = grep { ((split /\n/, $t->{conf_text})[$_ - 1] // "") =~ /sticky_session name=/ } 1 .. 100;
        like($out, qr/"sticky_session" directive .* in \Q$conf\E:$line\b/, 'with file:line');
    }
}

# Upstreams sharing a zone share its sync: other settings are refused.
{
    my $t = StickyTest->new;
    $t->write_config(<<"CONF");
http {
    upstream one { sticky_session zone=shared:1m sync=redis://127.0.0.1:$redis sync_key=$key; server 127.0.0.1:1; }
    upstream two { sticky_session zone=shared:1m; server 127.0.0.1:2; }
    server { listen 127.0.0.1:%%PORT_FRONT%%; location / { proxy_pass http://one; } }
}
CONF
    my ($ok, $out) = $t->test_config;
    ok(!$ok, 'a zone shared with and without sync is refused');
    like($out, qr/zone "shared" is used with other "sync" settings by another upstream in \S+nginx\.conf:\d+/,
        'naming the zone, file and line');
}

# --- learned on A, routes on B ------------------------------------------
my $a = lb();
my $b = lb();
wait_for('both LBs report sync connected',
    sub { sync_status($a)->{state} eq 'connected' && sync_status($b)->{state} eq 'connected' });

my %sessions;
for (1 .. 40) {
    my ($id, $be) = new_session($a);
    $sessions{$id} = $be;
}
wait_for('B applied the 40 sessions learned on A', sub { sync_status($b)->{applied} >= 40 });
is_deeply(misrouted($b, \%sessions), [], 'every session learned on A routes on B');
is(scalar keys %{ { map { $_ => 1 } values %sessions } }, 3, 'the sessions are spread over the servers');

# --- a client alternating between A and B keeps every session -----------
{
    my (@lost, $requests);
    for my $n (1 .. 30) {
        my ($first, $second) = $n % 2 ? ($a, $b) : ($b, $a);
        my ($id, $home) = new_session($first);
        select undef, undef, undef, 0.05;    # the client reads the page
        for my $step (1 .. 6) {
            my $lb = $step % 2 ? $second : $first;
            my $r = $lb->get("/n?sid=$id");
            $requests++;
            push @lost, "$id step $step: " . backend_of($r) . " not $home"
                unless backend_of($r) eq $home;
        }
    }
    is_deeply(\@lost, [], "alternating clients: 30 sessions, $requests requests, none lost");
}

# --- no raw id ever reaches Redis ---------------------------------------
{
    my $monitor = "$dir/monitor.out";
    my $pid = fork // die;
    if ($pid == 0) {
        open STDOUT, '>', $monitor;
        exec 'redis-cli', '-p', $redis, 'MONITOR';
        die;
    }
    select undef, undef, undef, 0.3;
    my @ids;
    for (1 .. 10) {
        my ($id) = new_session($_ % 2 ? $a : $b);
        push @ids, $id;
        $b->get("/n?sid=$id");
    }
    select undef, undef, undef, 0.5;
    kill 'TERM', $pid;
    waitpid $pid, 0;
    my $seen = do { local (@ARGV, $/) = $monitor; <> };
    like($seen, qr/EVALSHA/, 'MONITOR saw the updates');
    my $keys = $apps->redis_cli(undef, '--scan', '--pattern', 'sticky:*');
    my $values = join "\n", map { $apps->redis_cli(undef, 'GET', $_) } split /\n/, $keys;
    my @leaks = grep { index($seen, $_) >= 0 || index($keys, $_) >= 0 || index($values, $_) >= 0 }
        (@ids, keys %sessions);
    is_deeply(\@leaks, [], 'no raw id in MONITOR output, keys or values');
    my @ttl = map { $apps->redis_cli(undef, 'PTTL', $_) } grep { /:s:/ } split /\n/, $keys;
    ok(@ttl && !grep({ $_ <= 0 || $_ > 3_600_000 } @ttl), 'every session key expires within the idle timeout');
}

# --- B restarted without state= gets every live session back ------------
$b->stop_nginx;
$b->run;
wait_for('restarted B resynced', sub { sync_status($b)->{state} eq 'connected' });
is_deeply(misrouted($b, \%sessions), [], 'B restarted without state= routes every session');

# --- Redis killed mid-traffic -------------------------------------------
{
    my (@failed, %outage);
    $apps->kill_redis;
    for my $n (1 .. 20) {
        for my $id ((sort keys %sessions)[0 .. 4]) {
            my $r = ($n % 2 ? $a : $b)->get("/n?sid=$id");
            push @failed, "$id: " . StickyTest::status($r) . ' ' . backend_of($r)
                unless StickyTest::status($r) == 200 && backend_of($r) eq $sessions{$id};
        }
        my ($id, $be) = new_session($a);
        $outage{$id} = $be;
        push @failed, "new session on A failed" unless defined $id;
    }
    is_deeply(\@failed, [], 'Redis down: no request failed, known sessions kept routing');
    is(sync_status($a)->{state}, 'down', 'A reports sync down');
    like(sync_status($a)->{last_error}, qr/^(closed|connect)$/, 'and why (lost, then refused)');
    is_deeply(misrouted($a, \%outage), [], 'A kept learning during the outage');
    $apps->redis;    # empty: it had no persistence
    wait_for('A and B resynced after Redis came back',
        sub { sync_status($a)->{state} eq 'connected' && sync_status($b)->{state} eq 'connected' }, 15);
    wait_for('sessions learned during the outage reached B',
        sub { !@{ misrouted($b, { %outage }) } }, 10);
    is_deeply(misrouted($b, \%sessions), [], 'and the earlier ones are still there');
    like($a->error_log, qr/sync with redis:\S+ \(\S+\) lost: closed/, 'the loss was logged');
    my @lost = $a->error_log =~ /sync with .* (lost|failed)/g;
    cmp_ok(scalar @lost, '<=', 4, 'once per change of state, not per retry');
}

# --- another key never misroutes, and says so ---------------------------
{
    my $other = key_file('other.key', "ffeeddccbbaa99887766554433221100deadbeef\n");
    my $c = lb(key => $other);
    wait_for('C reports key_mismatch', sub { sync_status($c)->{state} eq 'key_mismatch' });
    like($c->error_log, qr/key_mismatch: Redis holds the key check of another sync_key/, 'C logs why');
    my %seen;
    for my $id ((sort keys %sessions)[0 .. 9]) {
        my $r = $c->get("/n?sid=$id");
        $seen{ sticky_of($r) }++;
    }
    is_deeply(\%seen, { MISS => 10 }, "C does not know A's sessions (no misroute)");
    is_deeply(misrouted($b, \%sessions), [], "and C wrote nothing that misroutes B");
    $c->stop;
}

# --- a reload keeps one subscription per LB ------------------------------
{
    my $channel = 'sticky:shop';
    my $subs = sub { ($apps->redis_cli(undef, 'PUBSUB', 'NUMSUB', $channel) =~ /^(\d+)$/m)[0] };
    is($subs->(), 2, 'two LBs, two subscribers');
    $a->reload;
    wait_for('A resubscribed after reload', sub { sync_status($a)->{state} eq 'connected' });
    wait_for('still two subscribers (the old worker left)', sub { $subs->() == 2 });
    my $clients = sub { scalar(() = $apps->redis_cli(undef, 'CLIENT', 'LIST') =~ /^id=/mg) };
    is($clients->(), 2 * 3 + 1, 'each LB holds 3 connections (2 workers + 1 subscriber)');

    # Binary upgrade: USR2 starts a new master beside the old, then the old quits.
    my $old = $a->{pid};
    kill 'USR2', $old;
    wait_for('binary upgrade: a new master started',
        sub { -s $a->dir . '/logs/nginx.pid.oldbin' && ($a->read_pid // $old) != $old });
    my $new = $a->read_pid;
    kill 'QUIT', $old;
    wait_for('the old master left', sub { !kill 0, $old }, 15);
    $a->{pid} = $new;
    wait_for('the new master resynced', sub { sync_status($a)->{state} eq 'connected' });
    wait_for('still two subscribers after the upgrade', sub { $subs->() == 2 });
    wait_for('and no connection left behind', sub { $clients->() == 2 * 3 + 1 });
    is_deeply(misrouted($a, \%sessions), [], 'the upgraded A routes every session');
}

# --- expiry stays coherent both ways -------------------------------------
{
    $_->stop for $a, $b;
    $a = lb(timeout => '6s');
    $b = lb(timeout => '6s');
    wait_for('short-timeout LBs connected',
        sub { sync_status($a)->{state} eq 'connected' && sync_status($b)->{state} eq 'connected' });
    my ($id, $home) = new_session($a);
    my ($idle) = new_session($a);
    select undef, undef, undef, 0.2;
    # Used only through B for 9 s (longer than the timeout).
    for (1 .. 9) {
        $b->get("/n?sid=$id");
        sleep 1;
    }
    my $r = $a->get("/n?sid=$id");
    is(sticky_of($r) . ' ' . backend_of($r), "HIT $home", 'a session used only through B did not expire on A');
    $r = $b->get("/n?sid=$idle");
    isnt(sticky_of($r), 'HIT', 'an idle session expired on B');
    $r = $a->get("/n?sid=$idle");
    isnt(sticky_of($r), 'HIT', 'and on A');
}

$_->stop for $a, $b, $apps;
done_testing;
