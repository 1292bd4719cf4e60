#!/usr/bin/perl
# make chaos: sticky traffic through 4 workers while things go wrong.
#   1. SIGKILL a random worker every ~100 ms (CHAOS_KILLS, default 200):
#      every worker keeps answering, no learned mapping is lost, nothing
#      crashes but the kills.
#   2. nginx -s reload every 0.5 s (CHAOS_RELOAD_SECONDS, default 30): no
#      failed request, mappings kept.
#   3. a backend killed and restarted repeatedly: only its sessions move,
#      and they are rebound.
#   4. a flood of requests with random client-chosen ids: the table does not
#      grow at all.
#   5. a zone filled to ten times its capacity: eviction works, the newest
#      sessions all hit, warnings are rate-limited.
# Prints what it did and one PASS/FAIL line per scenario; exits 1 on any FAIL.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use Test::More ();    # the harness reports through Test::More; keep it quiet
use StickyTest;

my $KILLS = $ENV{CHAOS_KILLS} // 200;
my $RELOAD_SECONDS = $ENV{CHAOS_RELOAD_SECONDS} // 30;
my $BACKEND_CYCLES = $ENV{CHAOS_BACKEND_CYCLES} // 5;
my $FLOOD = $ENV{CHAOS_FLOOD} // 3000;

Test::More->builder->no_plan;
Test::More->builder->output('/dev/null');
Test::More->builder->failure_output('/dev/null');

my $failed = 0;
sub verdict {
    my ($name, $ok, $detail) = @_;
    printf "%-5s %-40s %s\n", $ok ? 'PASS' : 'FAIL', $name, $detail;
    $failed++ unless $ok;
}

# A killed worker is reported by the master, and so is a zone mutex it held
# (which the master then releases): expected here, nothing else is.
my $EXPECTED = qr/exited on signal 9\b|shared memory zone "\w+" was locked by/;
my $t = StickyTest->new(allow_alerts => $EXPECTED);
$t->write_config(<<'CONF');
worker_processes 4;
http {
    access_log off;
    default_type text/html;
    upstream app {
        sticky_session name=sid zone=chaos:1m;
        server 127.0.0.1:%%PORT_B1%% max_fails=1 fail_timeout=1s;
        server 127.0.0.1:%%PORT_B2%% max_fails=1 fail_timeout=1s;
        server 127.0.0.1:%%PORT_PERL%% max_fails=1 fail_timeout=1s;
    }
    upstream small {
        sticky_session name=sid zone=small:32k learn=all max_learn=100000;   # pages of many ids fill it
        server 127.0.0.1:%%PORT_PERL%%;
    }
    map $arg_sid $sid { "" $request_id; default $arg_sid; }
    server {
        # No reuseport: a reload must not drop connections queued on the old
        # workers' sockets (reuseport does, in nginx itself).
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / {
            proxy_pass http://app;
            proxy_next_upstream error timeout;
            add_header X-Sticky $sticky_session_status always;
            add_header X-Worker $pid always;
        }
        location /small/ { proxy_pass http://small; add_header X-Sticky $sticky_session_status always; }
        location = /status { sticky_session_status; }
    }
}
CONF

# b1 and b2 run in a nginx of their own: the workers killed here must not
# take the backends down with them (that would be a real failover).
my $bdir = $t->dir . '/backends';
mkdir $bdir;
mkdir "$bdir/logs";
open my $bconf, '>', "$bdir/nginx.conf" or die;
printf $bconf <<'CONF', $t->port('B1'), $t->port('B2');
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type text/html;
    map $arg_sid $sid { "" $request_id; default $arg_sid; }
    server { listen 127.0.0.1:%d backlog=4096; location / { return 200 "backend=b1 <a href=\"/n?sid=$sid\">n</a>"; } }
    server { listen 127.0.0.1:%d backlog=4096; location / { return 200 "backend=b2 <a href=\"/n?sid=$sid\">n</a>"; } }
}
CONF
close $bconf;
system($t->{nginx}, '-p', "$bdir/", '-c', 'nginx.conf') == 0 or die "backend nginx failed to start\n";
push @{ $t->{stop_hooks} }, sub {
    open my $fh, '<', "$bdir/logs/nginx.pid" or return;
    my $p = <$fh>;
    kill 'QUIT', $1 if $p && $p =~ /(\d+)/;
};

my $perl_backend = sub {
    my ($m, $uri) = @_;
    if ($uri =~ m{^/small/fill\?prefix=(\w+)&from=(\d+)&count=(\d+)}) {
        my $page = "backend=perl\n" . join '', map { "<a href=\"/n?sid=$1$_\">$_</a>\n" } $2 .. $2 + $3 - 1;
        return ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: " . length($page)
            . "\r\nConnection: close\r\n\r\n", [$page]);
    }
    my ($sid) = $uri =~ /sid=(\w+)/;
    $sid //= 'p' . $$ . int(rand 1e9);
    my $page = "backend=perl <a href=\"/n?sid=$sid\">n</a>";
    return ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: " . length($page)
        . "\r\nConnection: close\r\n\r\n", [$page]);
};
my $perl_pid = $t->backend($t->port('PERL'), $perl_backend, pause => 0);
$t->run;

sub who { StickyTest::body($_[0]) =~ /backend=(\w+)/ ? $1 : 'none' }
sub sticky { StickyTest::header($_[0], 'X-Sticky') // 'none' }
sub get { my $r = eval { $t->get($_[0], timeout => 5) }; defined $r ? $r : '' }

sub new_sessions {
    my ($n) = @_;
    my %home;
    while (keys %home < $n) {
        my $r = get('/');
        my ($sid) = StickyTest::body($r) =~ /sid=(\w+)/ or next;
        $home{$sid} = who($r);
    }
    return \%home;
}

# Sessions whose request did not HIT their server.
sub lost {
    my ($home, %skip) = @_;
    my @lost;
    for my $id (sort keys %$home) {
        next if $skip{ $home->{$id} };
        my $r = get("/n?sid=$id");
        push @lost, "$id: $home->{$id} -> " . who($r) . ' ' . sticky($r) . ' ' . StickyTest::status($r)
            unless sticky($r) eq 'HIT' && who($r) eq $home->{$id};
    }
    print STDERR "  lost: $_\n" for @lost[0 .. ($#lost < 2 ? $#lost : 2)];
    return \@lost;
}

# Forks $n clients that request /n?sid=ID for their sessions until told to
# stop; each writes "ok failed" counts to a file at the end.
sub load {
    my ($home, $n) = @_;
    my @ids = sort keys %$home;
    my @kids;
    for my $c (1 .. $n) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my ($ok, $bad, $retried, @why) = (0, 0, 0);
            my $stop = 0;
            $SIG{TERM} = sub { $stop = 1 };
            my $i = $c;
            while (!$stop) {
                my $id = $ids[$i++ % @ids];
                my $t0 = time;
                my $r = get("/n?sid=$id");
                if ($r eq '') {
                    # Closed before any byte: an exiting worker dropping a
                    # connection it accepted but had not read (nginx's own
                    # graceful shutdown). Clients retry; so do we, once.
                    $retried++;
                    $r = get("/n?sid=$id");
                }
                if (StickyTest::status($r) == 200 && who($r) eq $home->{$id}) { $ok++ }
                else {
                    $bad++;
                    push @why, sprintf('%s:%s:%s:%dB:%.1fs', $id, StickyTest::status($r), who($r),
                        length $r, time - $t0) if @why < 3;
                }
            }
            open my $fh, '>', $t->dir . "/load.$c" or POSIX::_exit(1);
            print $fh "$ok $bad $retried @why\n";
            close $fh;
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    return sub {
        kill 'TERM', @kids;
        waitpid $_, 0 for @kids;
        my ($ok, $bad, $retried, @why) = (0, 0, 0);
        for my $c (1 .. $n) {
            open my $fh, '<', $t->dir . "/load.$c" or next;
            my ($o, $b, $r, @w) = split ' ', <$fh>;
            $ok += $o;
            $bad += $b;
            $retried += $r;
            push @why, @w;
        }
        return ($ok, $bad, "@why[0 .. ($#why < 5 ? $#why : 5)]", $retried);
    };
}

sub crashes {
    my @bad = grep { /exited on signal/ ? !/exited on signal 9\b/ : /\[(alert|crit|emerg)\]/ && !/$EXPECTED/ }
        split /\n/, $t->error_log;
    return \@bad;
}

# 1. Kill workers under load.
{
    my $home = new_sessions(60);
    my $stop = load($home, 4);
    my $start = time;
    my $kills = 0;
    while ($kills < $KILLS) {
        my @w = $t->workers;
        if (@w) {
            kill 'KILL', $w[int rand @w];
            $kills++;
        }
        sleep 0.1;
    }
    sleep 1;    # let the master replace the last victims
    my ($ok, $bad, $why) = $stop->();
    my %answered;
    for (1 .. 40) { my $r = get('/n?sid=none'); $answered{ StickyTest::header($r, 'X-Worker') // 'none' }++ }
    my $lost = lost($home);
    my $crash = crashes();
    my $workers = grep { $_ ne 'none' } keys %answered;
    verdict('kill a worker every 100 ms', !@$lost && !@$crash && $workers >= 2 && $ok > 0,
        sprintf('%d kills in %.0fs; %d sticky requests ok, %d failed (killed mid-request); '
            . '%d workers answer; %d of %d mappings lost; %d crashes',
            $kills, time - $start, $ok, $bad, $workers, scalar @$lost, scalar keys %$home, scalar @$crash));
}

# 2. Reload under load.
{
    my $home = new_sessions(30);
    my $stop = load($home, 3);
    my $end = time + $RELOAD_SECONDS;
    my $reloads = 0;
    while (time < $end) {
        kill 'HUP', $t->{pid};
        $reloads++;
        sleep 0.5;
    }
    sleep 1;
    my ($ok, $bad, $why, $retried) = $stop->();
    my $lost = lost($home);
    verdict('reload every 0.5 s', !$bad && !@$lost && $ok > 0,
        "$reloads reloads; $ok requests ok, $bad failed $why ($retried retried once after an "
            . 'exiting worker closed a fresh connection); ' . scalar(@$lost) . ' mappings lost');
}

# 3. A backend killed and restarted repeatedly.
{
    my $home = new_sessions(30);
    my ($moved_other, $not_rebound) = (0, 0);
    for my $cycle (1 .. $BACKEND_CYCLES) {
        kill 'KILL', $perl_pid;
        waitpid $perl_pid, 0;
        @{ $t->{backends} } = grep { $_ != $perl_pid } @{ $t->{backends} };
        for my $id (sort keys %$home) {
            my $r = get("/n?sid=$id");
            if ($home->{$id} eq 'perl') {
                $not_rebound++ unless sticky($r) eq 'REBOUND' && StickyTest::status($r) == 200;
                $home->{$id} = who($r);
            } elsif (!(sticky($r) eq 'HIT' && who($r) eq $home->{$id})) {
                $moved_other++;
            }
        }
        $perl_pid = $t->backend($t->port('PERL'), $perl_backend, pause => 0);
        sleep 2.1;    # fail_timeout
        # New sessions, some on the returned backend, for the next cycle.
        my $more = new_sessions(9);
        $home->{$_} = $more->{$_} for keys %$more;
    }
    verdict('kill and restart a backend', !$moved_other && !$not_rebound,
        "$BACKEND_CYCLES cycles; sessions of other backends moved: $moved_other; "
            . "sessions of the killed one not rebound: $not_rebound");
}

# 4. Random client-chosen ids do not grow the table.
{
    my $before = status('chaos', 'entries');
    my $sent = 0;
    for (1 .. $FLOOD) {
        get('/n?sid=' . join '', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 24);
        $sent++;
    }
    my $after = status('chaos', 'entries');
    verdict('flood of random ids', defined $before && $after == $before,
        "$sent requests with random ids; entries $before -> $after");
}

# 5. Fill a small zone to ten times its capacity.
{
    my $capacity = status('small', 'capacity') // 0;
    my $batch = 2000;
    my $n = 0;
    while ($n < 10 * $capacity) {
        get("/small/fill?prefix=f&from=$n&count=$batch");
        $n += $batch;
    }
    sleep 1.1;    # last use is kept to the second: make the next ones newer
    get('/small/fill?prefix=new&from=1&count=50');
    my $hits = grep { sticky(get("/small/n?sid=new$_")) eq 'HIT' } 1 .. 50;
    my @warn = $t->error_log =~ /zone "small" is full/g;
    my $evicted = status('small', 'evicted') // 0;
    verdict('fill a zone to 10x capacity', $hits == 50 && @warn == 1 && $evicted > 8 * $capacity,
        "capacity $capacity, $n learned, evicted $evicted, newest 50: $hits hit, warnings logged: "
            . scalar @warn);
}

sub status {
    my ($zone, $field) = @_;
    my $body = StickyTest::body(get('/status'));
    return $body =~ /"\Q$zone\E":\{[^{]*"\Q$field\E":(\d+)/ ? $1 : undef;
}

$t->stop;
my $crash = crashes();
verdict('no worker crashed (other than kills)', !@$crash, @$crash ? $crash->[0] : 'error.log clean');
exit($failed ? 1 : 0);
