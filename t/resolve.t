#!/usr/bin/perl
# A DNS-driven pool under traffic (`server NAME resolve`, nginx >= 1.27.3):
# the name gains one address and loses another while clients keep coming.
# Sessions of the servers that stayed never move; the lost server's sessions
# are rebound on their next request; the new server receives new sessions;
# the status page follows the live set. No request fails.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of sid_of sticky_of);
use Time::HiRes qw(sleep time);

my $t = StickyTest->new;
plan skip_all => 'server ... resolve needs nginx >= 1.27.3' if $t->nginx_version < 1_027_003;
$t->dns('pool.test' => ['127.0.0.2', '127.0.0.3']);
$t->write_config(<<'CONF');
worker_processes 2;
http {
    access_log off;
    resolver 127.0.0.1:%%PORT_DNS%% valid=1s ipv6=off;
    upstream app {
        zone app 64k;
        sticky_session name=sid zone=resolve:1m;
        server pool.test:%%PORT_APP%% resolve;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%% reuseport;
        location / {
            proxy_pass http://app;
            proxy_next_upstream error timeout;
            add_header X-Sticky $sticky_session_status always;
            add_header X-Upstream $upstream_addr always;
        }
        location = /status { sticky_session_status; }
    }
}
CONF
my $page = sub {
    my ($name) = @_;
    my $count = 0;
    return sub {
        my ($m, $uri) = @_;
        my ($sid) = $uri =~ /sid=(\w+)/;
        # Forked from one parent, the backends share rand()'s sequence.
        $sid //= "${name}s" . ++$count;
        return ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n",
            ["backend=$name <a href=\"/n?sid=$sid\">n</a>"]);
    };
};
for my $n (2 .. 4) {
    $t->backend($t->port('APP'), $page->("b$n"), addr => "127.0.0.$n", pause => 0);
}
$t->run;

my $deadline = time + 10;
sleep 0.2 until StickyTest::status($t->get('/')) == 200 || time > $deadline;

my %home;
for (1 .. 40) {
    my $r = $t->get('/');
    $home{ sid_of($r) } = backend_of($r);
}
my %per;
$per{$_}++ for values %home;
ok($per{b2} && $per{b3} && !$per{b4}, "sessions on b2 ($per{b2}) and b3 ($per{b3}), none on b4 yet");

# Traffic on the b2 sessions while DNS changes: none may fail or move.
my @b2 = grep { $home{$_} eq 'b2' } sort keys %home;
my $client = fork // die;
if ($client == 0) {
    my $bad = 0;
    my $end = time + 4;
    while (time < $end) {
        for my $id (@b2) {
            my $r = $t->get("/n?sid=$id");
            $bad++ unless StickyTest::status($r) == 200 && backend_of($r) eq 'b2';
        }
    }
    exit($bad > 255 ? 255 : $bad);
}
$t->dns('pool.test' => ['127.0.0.2', '127.0.0.4']);
my $b4 = '127.0.0.4:' . $t->port('APP');
$deadline = time + 10;
sleep 0.2 until StickyTest::body($t->get('/status')) =~ /"\Q$b4\E"/ || time > $deadline;
like(StickyTest::body($t->get('/status')), qr/"\Q$b4\E"/, 'the status page lists the new address');
unlike(StickyTest::body($t->get('/status')), qr/"127\.0\.0\.3:/, 'and no longer the one that left');
waitpid $client, 0;
is($? >> 8, 0, 'under traffic, no b2 session failed or moved while the pool changed');

my (@moved, %rebound);
for my $id (sort keys %home) {
    my $r = $t->get("/n?sid=$id");
    if ($home{$id} eq 'b2') {
        push @moved, $id unless backend_of($r) eq 'b2' && sticky_of($r) eq 'HIT';
    } else {
        $rebound{ sticky_of($r) }++;
        my $again = $t->get("/n?sid=$id");
        push @moved, "$id (rebound, then moved again)"
            unless backend_of($again) eq backend_of($r) && sticky_of($again) eq 'HIT';
    }
}
is_deeply(\@moved, [], 'sessions of the server that stayed kept it; rebound ones stay rebound');
is_deeply(\%rebound, { REBOUND => $per{b3} }, "the lost server's $per{b3} sessions were rebound on their first request");

my %new;
for (1 .. 40) {
    $new{ backend_of($t->get('/')) }++;
}
ok($new{b4} && $new{b2} && !$new{b3}, "new sessions go to b2 ($new{b2}) and the new b4 ($new{b4})");

$t->stop;
done_testing;
