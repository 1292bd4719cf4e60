#!/usr/bin/perl
# make bench-sync: what sync through Redis costs and how fast it carries
# sessions. Two LBs (nginx, 2 workers each) share one Redis, all started here
# on loopback ports chosen free:
#
# - propagation: a session learned on A, then B asked for it (on a path that
#   teaches nothing) until it routes there as a HIT; the time from A's answer
#   to B's first HIT, p50/p99/max over BENCH_SYNC_SESSIONS (default 1,000);
# - the rate of new sessions one LB learns and publishes (wrk, every request
#   a new session) and whether any update was dropped;
# - Redis memory per live session (used_memory growth / session keys).
# The hit path with sync on vs off is a row of `make bench` (instructions).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Time::HiRes qw(time sleep);
use StickyTest qw(backend_of sid_of sticky_of);

my $N = $ENV{BENCH_SYNC_SESSIONS} // 1000;
my $SECONDS = $ENV{BENCH_SYNC_SECONDS} // 5;

my $apps = StickyTest->new;
$apps->write_config(<<'CONF');
worker_processes 1;
http {
    access_log off;
    map $arg_sid $sid { "" $request_id; default $arg_sid; }
    server { listen 127.0.0.1:%%PORT_B1%%; default_type text/html;
             location / { return 200 "backend=b1 <a href=\"/n?sid=$sid\">n</a>\n"; }
             location /x { return 200 "backend=b1\n"; } }
    server { listen 127.0.0.1:%%PORT_B2%%; default_type text/html;
             location / { return 200 "backend=b2 <a href=\"/n?sid=$sid\">n</a>\n"; }
             location /x { return 200 "backend=b2\n"; } }
}
CONF
$apps->run;
my $redis = $apps->redis;
my $dir = $apps->dir;
open my $kf, '>', "$dir/sync.key" or die $!;
print $kf "bench-sync-key-0123456789abcdef\n";
close $kf;
chmod 0600, "$dir/sync.key";

sub lb {
    my $lb = StickyTest->new;
    my ($b1, $b2) = map { $apps->port($_) } qw(B1 B2);
    $lb->write_config(<<"CONF");
worker_processes 2;
events { worker_connections 4096; }
http {
    access_log off;
    upstream app {
        sticky_session name=sid zone=bench:64m sync=redis://127.0.0.1:$redis sync_key=$dir/sync.key;
        server 127.0.0.1:$b1;
        server 127.0.0.1:$b2;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%% reuseport backlog=4096;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            add_header X-Sticky \$sticky_session_status always;
        }
        location = /status { sticky_session_status; }
    }
}
CONF
    return $lb->run;
}

sub sync_of {
    my ($lb) = @_;
    my ($sync) = StickyTest::body($lb->get('/status')) =~ /"sync":\{(.*?)\}\}*\s*$/s;
    my %s = ($sync // '') =~ /"(\w+)":"?([\w.]+)"?/g;
    my ($zone) = StickyTest::body($lb->get('/status')) =~ /"bench":\{([^}]*)\}/;
    my %z = ($zone // '') =~ /"(\w+)":(\d+)/g;
    return { %s, %z };
}

sub wait_connected {
    for my $lb (@_) {
        my $deadline = time + 20;
        until ((sync_of($lb)->{state} // '') eq 'connected') {
            die "sync did not connect\n" if time > $deadline;
            sleep 0.05;
        }
    }
}

my $lba = lb();
my $lbb = lb();
wait_connected($lba, $lbb);

# --- propagation learned-on-A -> routable-on-B ---------------------------
my (@delay, $polls);
for (1 .. $N) {
    my $r = $lba->get('/');
    my $learned = time;
    my ($id, $home) = (sid_of($r), backend_of($r));
    die "no session from A\n" unless $id;
    while (1) {
        my $r2 = $lbb->get("/x?sid=$id");
        $polls++;
        if (sticky_of($r2) eq 'HIT') {
            die "$id routed to " . backend_of($r2) . " on B, issued by $home\n"
                unless backend_of($r2) eq $home;
            push @delay, (time - $learned) * 1000;
            last;
        }
        die "$id never reached B\n" if time - $learned > 5;
    }
}
@delay = sort { $::a <=> $::b } @delay;
my $q = sub { $delay[ int($_[0] * $#delay + 0.5) ] };
printf "propagation learned on A -> HIT on B over %d sessions: p50 %.2f ms, p99 %.2f ms, "
    . "max %.2f ms (%.1f polls per session; each poll is one request to B, so these are upper bounds)\n",
    scalar @delay, $q->(0.5), $q->(0.99), $delay[-1], $polls / @delay;
my $bs = sync_of($lbb);
printf "  B's own measure (message sent -> merged, buckets): p50 <= %s ms, p99 <= %s ms, max %s ms\n",
    map { $_ // '?' } $bs->{p50}, $bs->{p99}, $bs->{max};

# --- new sessions per second one LB publishes ----------------------------
my $before = sync_of($lba);
my $mem0 = ($apps->redis_cli(undef, 'INFO', 'memory') =~ /^used_memory:(\d+)/m)[0];
my $keys0 = ($apps->redis_cli(undef, 'DBSIZE') =~ /(\d+)/)[0];
my $wrk = `wrk -t2 -c32 -d${SECONDS}s http://127.0.0.1:${\ $lba->port('FRONT') }/ 2>&1`;
my ($rps) = $wrk =~ /Requests\/sec:\s*([\d.]+)/ or die "wrk failed: $wrk\n";
# Let the queues drain.
my ($after, $last) = (undef, -1);
for (1 .. 100) {
    $after = sync_of($lba);
    last if $after->{published} == $last;
    $last = $after->{published};
    sleep 0.2;
}
my $learned = $after->{learned} - $before->{learned};
my $published = $after->{published} - $before->{published};
my $dropped = $after->{dropped} - $before->{dropped};
printf "new sessions on A: %.0f/s for %d s (%d learned, %d published, %d dropped)\n",
    $learned / $SECONDS, $SECONDS, $learned, $published, $dropped;

# --- Redis memory per live session ---------------------------------------
my $mem1 = ($apps->redis_cli(undef, 'INFO', 'memory') =~ /^used_memory:(\d+)/m)[0];
my $keys1 = ($apps->redis_cli(undef, 'DBSIZE') =~ /(\d+)/)[0];
my $per = ($mem1 - $mem0) / (($keys1 - $keys0) || 1);
printf "Redis memory per live session: %.0f bytes (%d sessions, used_memory +%.1f MB)\n",
    $per, $keys1 - $keys0, ($mem1 - $mem0) / 1e6;

# --- a restarted LB loads every live session --------------------------------
$lbb->stop_nginx;
my $t0 = time;
$lbb->run;
wait_connected($lbb);
my $loaded = sync_of($lbb);
printf "B restarted without state=: resynced in %.2f s (%d sessions loaded from Redis, "
    . "%d entries in its table)\n", time - $t0, $loaded->{applied}, $loaded->{entries} // 0;

printf "RATIO sync_propagation_p99_ms %.3f\n", $q->(0.99);
printf "RATIO sync_redis_bytes_per_session %.0f\n", $per;
printf "RATIO sync_dropped_at_full_rate %d\n", $dropped;

$_->stop for $lba, $lbb, $apps;
Test::More::done_testing();
