#!/usr/bin/perl
# sticky_session_status: per-zone counters shared by all workers match the
# traffic sent, live sessions per server, JSON and Prometheus formats.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use StickyTest qw(backend_of);

my $t = StickyTest->new;
$t->write_config(<<'CONF');
worker_processes 2;
http {
    access_log off;
    default_type text/html;
    upstream app {
        # 16m: a million slots, counted over several turns of the event loop.
        sticky_session name=sid zone=web:16m;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
    }
    upstream short {
        sticky_session name=sid zone=short:64k timeout=1s;
        server 127.0.0.1:%%PORT_B1%%;
    }
    map $arg_sid $sid { "" $request_id; default $arg_sid; }
    server {
        listen 127.0.0.1:%%PORT_FRONT%% reuseport;
        location / { proxy_pass http://app; }
        location /short/ { proxy_pass http://short; }
        location = /status { sticky_session_status; }
    }
    server { listen 127.0.0.1:%%PORT_B1%%; location / { return 200 "backend=b1 <a href=\"/n?sid=$sid\">n</a>"; } }
    server { listen 127.0.0.1:%%PORT_B2%%; location / { return 200 "backend=b2 <a href=\"/n?sid=$sid\">n</a>"; } }
}
CONF
$t->run;


my (%home, %per);
for (1 .. 5) {
    my $r = $t->get('/');
    my ($sid) = StickyTest::body($r) =~ /sid=(\w+)/;
    $home{$sid} = backend_of($r);
    $per{ backend_of($r) }++;
}
my @ids = sort keys %home;
$t->get("/n?sid=$ids[$_ % 5]") for 1 .. 7;
$t->get("/n?sid=unknown$_") for 1 .. 3;
my $r = $t->get('/short/');
my ($short) = StickyTest::body($r) =~ /sid=(\w+)/;
sleep 2.2;
$t->get("/short/n?sid=$short");

$r = $t->get('/status');
is(StickyTest::status($r), 200, 'status answers');
is(StickyTest::header($r, 'Content-Type'), 'application/json', 'as JSON');
my $s = decode_json(StickyTest::body($r));
my $web = $s->{zones}{web};
is_deeply(
    { map { $_ => $web->{$_} } qw(entries hits misses expired learned rebound evicted unscanned) },
    { entries => 5, hits => 7, misses => 3, expired => 0, learned => 5, rebound => 0, evicted => 0, unscanned => 0 },
    'zone counters match the traffic, across two workers'
);
cmp_ok($web->{capacity}, '>', 1_000_000, '16m zone capacity reported');
my $p1 = $t->port('B1');
my $p2 = $t->port('B2');
is_deeply($web->{upstreams}{app}{servers},
    { "127.0.0.1:$p1" => $per{b1} // 0, "127.0.0.1:$p2" => $per{b2} // 0 },
    'live sessions per server');
is($s->{zones}{short}{expired}, 1, 'expired lookups counted in their own zone');
is($s->{zones}{short}{entries}, 0, 'an expired session is not live');

$r = $t->get('/status?format=prometheus');
like(StickyTest::header($r, 'Content-Type'), qr{^text/plain; version=0\.0\.4}, 'Prometheus content type');
my $prom = StickyTest::body($r);
like($prom, qr/^# TYPE sticky_session_hits_total counter$/m, 'typed counters');
like($prom, qr/^sticky_session_hits_total\{zone="web"\} 7$/m, 'hits');
like($prom, qr/^sticky_session_learned_total\{zone="web"\} 5$/m, 'learned');
like($prom, qr/^sticky_session_server_sessions\{zone="web",upstream="app",server="127\.0\.0\.1:$p1"\} ${\($per{b1} \/\/ 0)}$/m,
    'sessions per server');

is(StickyTest::status($t->post('/status', 'x=1')), 405, 'only GET and HEAD');
$r = $t->http("HEAD /status HTTP/1.0\r\nHost: localhost\r\n\r\n");
is(StickyTest::status($r) . ' ' . length(StickyTest::body($r)), '200 0', 'HEAD: the headers only');

$t->stop;
done_testing;
