#!/usr/bin/perl
# fallback=off: a session whose server is unusable gets 502 instead of
# another server; new visitors are still balanced; the session works again
# when its server returns.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of);

my $t = StickyTest->new(allow_alerts => 'no live upstreams');
$t->write_config(<<'CONF');
http {
    access_log off;
    upstream app {
        sticky_session name=sid zone=strict:64k fallback=off;
        server 127.0.0.1:%%PORT_PERL%% max_fails=1 fail_timeout=1s;
        server 127.0.0.1:%%PORT_B1%%;
    }
    map $arg_sid $sid { "" $request_id; default $arg_sid; }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / {
            proxy_pass http://app;
            proxy_next_upstream error timeout;
            add_header X-Sticky $sticky_session_status always;
            add_header X-Upstream $upstream_addr always;
        }
    }
    server { listen 127.0.0.1:%%PORT_B1%%; default_type text/html;
             location / { return 200 "backend=b1 <a href=\"/n?sid=$sid\">n</a>"; } }
}
CONF

my $perl = sub {
    my ($m, $uri) = @_;
    my ($sid) = $uri =~ /sid=(\w+)/;
    $sid //= 'p' . int(rand 1e9);
    return ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n",
        ["backend=perl <a href=\"/n?sid=$sid\">n</a>"]);
};
my $pid = $t->backend($t->port('PERL'), $perl, pause => 0);
$t->run;


my $r = $t->get('/');
is(backend_of($r), 'perl', 'a session starts on the perl backend');
my ($sid) = StickyTest::body($r) =~ /sid=(\w+)/;
is(backend_of($t->get("/n?sid=$sid")), 'perl', 'and sticks to it');

kill 'KILL', $pid;
waitpid $pid, 0;
$t->{backends} = [];
$r = $t->get("/n?sid=$sid");
is(StickyTest::status($r), 502, 'its server down: 502, not another server');
$r = $t->get("/n?sid=$sid");
is(StickyTest::status($r), 502, 'still 502 while the server is marked failed');
is(StickyTest::header($r, 'X-Upstream'), 'app', 'named after the upstream, as round robin does');
my %new;
$new{ StickyTest::status($_) . ' ' . backend_of($_) }++ for map { $t->get('/') } 1 .. 4;
is_deeply(\%new, { '200 b1' => 4 }, 'new visitors are balanced to the live server');

$t->backend($t->port('PERL'), $perl, pause => 0);
sleep 2.2;    # fail_timeout (whole seconds, as nginx compares them)
my %back;
$back{ StickyTest::status($_) . ' ' . backend_of($_) . ' ' . StickyTest::header($_, 'X-Sticky') }++
    for map { $t->get("/n?sid=$sid") } 1 .. 4;
is_deeply(\%back, { '200 perl HIT' => 4 }, 'the session returns to its server when it is back')
    or diag explain \%back;

$t->stop;
done_testing;
