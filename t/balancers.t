#!/usr/bin/perl
# nginx's own balancers written before sticky_session place the requests
# without a live session, and the sessions stick on top of them: least_conn
# (which shares round robin's data), random two and hash (which keep data of
# their own, handed back to them through ours), with keepalive after.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of sid_of sticky_of);

my $t = StickyTest->new;
$t->write_config(<<'CONF');
worker_processes 1;
http {
    access_log off;
    upstream lc {
        least_conn;
        sticky_session name=sid zone=lc:1m;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
        server 127.0.0.1:%%PORT_B3%%;
        keepalive 8;
    }
    upstream rnd {
        random two;
        sticky_session name=sid zone=rnd:1m;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
        server 127.0.0.1:%%PORT_B3%%;
    }
    upstream hs {
        hash $arg_k consistent;
        sticky_session name=sid zone=hs:1m;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
        server 127.0.0.1:%%PORT_B3%%;
    }
    upstream busy {
        least_conn;
        sticky_session name=sid zone=busy:1m;
        server 127.0.0.1:%%PORT_SLOW%%;
        server 127.0.0.1:%%PORT_B2%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        add_header X-Sticky $sticky_session_status always;
        location /lc/ { proxy_pass http://lc/; }
        location /rnd/ { proxy_pass http://rnd/; }
        location /hs/ { proxy_pass http://hs/; }
        location /busy/ { proxy_pass http://busy/; }
    }
    %%BACKENDS(B1,B2,B3)%%
}
CONF
my $n = 0;
$t->backend($t->port('SLOW'), sub {
    $n++;
    sleep 1;
    return ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n",
        ["backend=slow <a href=\"/n?sid=slow$n\">n</a>\n"]);
}, pause => 0);
$t->run;

for my $up (qw(lc rnd hs)) {
    my (%home, %spread, @moved);
    for my $i (1 .. 30) {
        my $r = $t->get("/$up/?k=$i");
        my $id = sid_of($r);
        $home{$id} = backend_of($r);
        $spread{ $home{$id} }++;
    }
    for my $id (sort keys %home) {
        for (1 .. 3) {
            my $r = $t->get("/$up/n?sid=$id&k=other$_");
            push @moved, "$id: " . backend_of($r) . ' ' . sticky_of($r)
                unless backend_of($r) eq $home{$id} && sticky_of($r) eq 'HIT';
        }
    }
    is_deeply(\@moved, [], "$up: 30 sessions stick, 90 requests");
    cmp_ok(scalar keys %spread, '>=', 2, "$up: new sessions placed on several servers");
}

# hash decides where a request without a session goes: the same key, the
# same server, every time.
my %by_key;
$by_key{ backend_of($t->get('/hs/?k=same')) }++ for 1 .. 6;
is(scalar keys %by_key, 1, 'hash: requests without a session follow their key');

# least_conn: while the slow server holds a connection, new sessions go to
# the other one (round robin would alternate).
my @kids;
my $out = $t->dir . '/busy';
for my $i (1 .. 6) {
    my $pid = fork // die;
    if ($pid == 0) {
        select undef, undef, undef, 0.1 * $i;
        my $r = $t->get('/busy/', timeout => 20);
        open my $fh, '>', "$out.$i" or die;
        print $fh backend_of($r);
        exit 0;
    }
    push @kids, $pid;
}
waitpid $_, 0 for @kids;
my %busy;
for my $i (1 .. 6) {
    open my $fh, '<', "$out.$i" or next;
    $busy{ scalar <$fh> }++;
}
cmp_ok($busy{slow} // 0, '<=', 2, 'least_conn: the busy server got ' . ($busy{slow} // 0) . ' of 6 new sessions');
is(($busy{slow} // 0) + ($busy{b2} // 0), 6, 'every request answered');

$t->stop;
done_testing;
