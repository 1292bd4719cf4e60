#!/usr/bin/perl
# How sync reaches Redis: a Unix socket, a database number, an ACL user with
# only the rights sync needs (credentials from a file), a wrong password
# (reported, never a failed request), and Redis Sentinel: a failover of the
# primary under traffic does not stop sync.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of sid_of sticky_of secret_file sync_status wait_for);

plan skip_all => 'redis-server not installed (make test installs it)'
    unless grep { -x "$_/redis-server" } split /:/, $ENV{PATH};

my $apps = StickyTest->new;
$apps->write_config(<<'CONF');
http {
    access_log off;
    %%BACKENDS(B1,B2,B3)%%
}
CONF
$apps->run;
my $dir = $apps->dir;

sub file {
    my ($name, $content) = @_;
    return secret_file("$dir/$name", $content);
}
my $key = file('sync.key', "00112233445566778899aabbccddeeff\n");

sub lb {
    my ($sync) = @_;
    my $lb = StickyTest->new;
    my $servers = join '', map { "        server 127.0.0.1:" . $apps->port("B$_") . ";\n" } 1 .. 3;
    $lb->write_config(<<"CONF");
worker_processes 2;
http {
    access_log off;
    upstream app {
        sticky_session name=sid zone=shop:1m sync_key=$key $sync;
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

# Learns $n sessions through $from; answers the ids that do not route to
# their server as a HIT through $to once $to has applied them.
sub carried {
    my ($from, $to, $n) = @_;
    my %s;
    for (1 .. $n) {
        my $r = $from->get('/');
        $s{ sid_of($r) } = backend_of($r);
    }
    my $deadline = time + 10;
    my @bad;
    do {
        select undef, undef, undef, 0.1;
        @bad = grep {
            my $r = $to->get("/n?sid=$_");
            !(backend_of($r) eq $s{$_} && sticky_of($r) eq 'HIT')
        } sort keys %s;
    } while (@bad && time < $deadline);
    return \@bad;
}

# --- Unix socket, database 3, an ACL user with only what sync needs -----
{
    my $sock = "$dir/redis.sock";
    $apps->redis('REDIS', args => ['--unixsocket', $sock, '--unixsocketperm', '700']);
    my $acl = $apps->redis_cli(undef, 'ACL', 'SETUSER', 'lb', 'on', '>lb-secret', 'resetkeys',
        '~sticky:*', 'resetchannels', '&sticky:*', '-@all',
        '+auth', '+select', '+ping', '+role', '+script|load', '+evalsha', '+get', '+set',
        '+publish', '+subscribe', '+scan', '+mget');
    like($acl, qr/OK/, 'ACL user for sync created');
    my $auth = file('redis.auth', "lb lb-secret\n");
    my $port = $apps->port('REDIS');
    my $a = lb("sync=unix:$sock sync_db=3 sync_auth=$auth");
    my $b = lb("sync=redis://127.0.0.1:$port/3 sync_auth=$auth");
    wait_for('A (Unix socket) and B (TCP) connected as the ACL user',
        sub { sync_status($a)->{state} eq 'connected' && sync_status($b)->{state} eq 'connected' });
    is_deeply(carried($a, $b, 20), [], 'sessions learned on A route on B');
    my $db3 = $apps->redis_cli(undef, '-n', '3', '--scan', '--pattern', 'sticky:shop:s:*');
    my $db0 = $apps->redis_cli(undef, '-n', '0', '--scan', '--pattern', 'sticky:*');
    is(scalar(() = $db3 =~ /\n/g), 20, 'the sessions are in database 3');
    is($db0, '', 'and nothing in database 0');

    # Redis full: updates are refused, the connection and the routing stay.
    my $failures = sync_status($a)->{failures};
    $apps->redis_cli(undef, 'CONFIG', 'SET', 'maxmemory', '1');
    my %full;
    for (1 .. 10) {
        my $r = $a->get('/');
        is(StickyTest::status($r), 200, 'Redis full: request served') if $_ == 1;
        $full{ sid_of($r) } = backend_of($r);
    }
    wait_for('Redis full: the refused updates are counted as dropped',
        sub { sync_status($a)->{dropped} >= 10 });
    is(sync_status($a)->{last_error}, 'server_error', 'and the error shown');
    is(sync_status($a)->{failures}, $failures, 'without dropping the connection');
    my @refused = $a->error_log =~ /refuses updates: OOM/g;
    ok(@refused >= 1 && @refused <= 2, 'logged once per worker that met it');
    $apps->redis_cli(undef, 'CONFIG', 'SET', 'maxmemory', '0');
    is_deeply(carried($a, $b, 5), [], 'Redis with room again: sessions flow');
    like($a->error_log, qr/accepts updates again/, 'and that is logged');

    my $wrong = file('wrong.auth', "lb not-the-password\n");
    my $c = lb("sync=redis://127.0.0.1:$port/3 sync_auth=$wrong");
    wait_for('a wrong password is reported', sub { (sync_status($c)->{last_error} // '') eq 'auth' });
    isnt(sync_status($c)->{state}, 'connected', 'and sync is not up');
    my $r = $c->get('/');
    is(StickyTest::status($r), 200, 'requests are served anyway');
    like($c->error_log, qr/sync with redis:\S+ \(\S+\) failed: auth:/, 'the refusal is logged');
    $_->stop for $a, $b, $c;
    $apps->kill_redis('REDIS', 'TERM');
}

# --- Sentinel: a failover of the primary under traffic -------------------
{
    my $p1 = $apps->redis('P1');
    my $p2 = $apps->redis('P2', args => ['--replicaof', '127.0.0.1', $p1]);
    my $sport = $apps->port('SENTINEL');
    my $sconf = file('sentinel.conf', <<"CONF");
port $sport
bind 127.0.0.1
dir $dir
sentinel monitor shop 127.0.0.1 $p1 1
sentinel down-after-milliseconds shop 1000
sentinel failover-timeout shop 5000
CONF
    my $spid = fork // die;
    if ($spid == 0) {
        open STDOUT, '>', "$dir/logs/sentinel.log";
        open STDERR, '>&', \*STDOUT;
        exec 'redis-server', $sconf, '--sentinel';
        die;
    }
    my $sentinel = sub { $apps->redis_cli('SENTINEL', @_) };
    wait_for('the sentinel knows the primary',
        sub { ($sentinel->('SENTINEL', 'get-master-addr-by-name', 'shop') // '') =~ /\b$p1\b/ });
    wait_for('and the replica',
        sub { ($sentinel->('SENTINEL', 'replicas', 'shop') // '') =~ /\b$p2\b/ }, 15);

    my $a = lb("sync=sentinel://127.0.0.1:$sport/shop");
    my $b = lb("sync=sentinel://127.0.0.1:$sport/shop");
    wait_for('both LBs found the primary through the sentinel',
        sub { sync_status($a)->{state} eq 'connected' && sync_status($b)->{state} eq 'connected' });
    is_deeply(carried($a, $b, 10), [], 'before the failover: learned on A, routes on B');

    # Traffic while the sentinel moves the primary.
    my $traffic = fork // die;
    if ($traffic == 0) {
        my $fails = 0;
        for (1 .. 150) {
            my $r = ($_ % 2 ? $a : $b)->get('/');
            $fails++ unless StickyTest::status($r) == 200;
            select undef, undef, undef, 0.02;
        }
        exit($fails ? 1 : 0);
    }
    like($sentinel->('SENTINEL', 'failover', 'shop'), qr/OK/, 'sentinel failover started');
    wait_for('the replica became the primary',
        sub { ($sentinel->('SENTINEL', 'get-master-addr-by-name', 'shop') // '') =~ /\b$p2\b/ }, 20);
    waitpid $traffic, 0;
    is($? >> 8, 0, 'no request failed during the failover');
    wait_for('both LBs resynced with the new primary',
        sub { sync_status($a)->{state} eq 'connected' && sync_status($b)->{state} eq 'connected' }, 20);
    is_deeply(carried($a, $b, 10), [], 'after the failover: learned on A, routes on B');
    is_deeply(carried($b, $a, 10), [], 'and the other way');
    like($apps->redis_cli('P2', 'ROLE'), qr/^master/, 'through the new primary');
    kill 'TERM', $spid;
    waitpid $spid, 0;
    $_->stop for $a, $b;
}

$apps->stop;
done_testing;
