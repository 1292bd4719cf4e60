#!/usr/bin/perl
# A session whose server dies is served by another one and rebound to it;
# keepalive composes; a reload keeps the table; ;jsessionid= paths route.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of count_backends);

my $t = StickyTest->new;
$t->write_config(<<'CONF');
http {
    access_log off;
    upstream app {
        sticky_session name=sid name=jsessionid zone=fo:64k learn=all;
        server 127.0.0.1:%%PORT_PERL%% max_fails=1 fail_timeout=30s;
        server 127.0.0.1:%%PORT_B1%%;
        keepalive 8;
    }
    map $arg_sid $sid { "" $request_id; default $arg_sid; }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout;
            add_header X-Sticky $sticky_session_status always;
        }
    }
    server { listen 127.0.0.1:%%PORT_B1%%; default_type text/html;
             location / { return 200 "backend=b1 <a href=\"/n?sid=$sid\">n</a>"; } }
}
CONF

my $n = 0;
my $perl = sub {
    $n++;
    return ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n",
        ["backend=perl <a href=\"/n?sid=perl$n\">n</a> <a href=\"/app;jsessionid=J$n\">j</a>"]);
};
my $perl_pid = $t->backend($t->port('PERL'), $perl, pause => 0);
$t->run;


my $r = $t->get('/');
is(backend_of($r), 'perl', 'first session comes from the perl backend');
my ($sid) = StickyTest::body($r) =~ /sid=(\w+)/;
is_deeply(count_backends(map { $t->get("/n?sid=$sid") } 1 .. 5), { perl => 5 },
    'sticky with keepalive in the upstream');
is_deeply(count_backends(map { $t->get("/app;jsessionid=J1") } 1 .. 5), { perl => 5 },
    ';jsessionid= path parameter routes');

$t->reload;
is(StickyTest::header($t->get("/n?sid=$sid"), 'X-Sticky'), 'HIT', 'reload keeps the mapping');

# The session's server dies: the request is served elsewhere and rebound.
kill 'KILL', $perl_pid;
waitpid $perl_pid, 0;
$t->{backends} = [];
$r = $t->get("/n?sid=$sid");
is(StickyTest::status($r), 200, 'request for a dead server is still served');
is(backend_of($r), 'b1', 'by the other server');
is(StickyTest::header($r, 'X-Sticky'), 'REBOUND', 'and the session is rebound');
$r = $t->get("/n?sid=$sid");
is(StickyTest::header($r, 'X-Sticky'), 'HIT', 'next request is a hit');
is(backend_of($r), 'b1', 'on the new server, without retrying the dead one');

# The old server returns: the rebound session stays where it now lives.
$t->backend($t->port('PERL'), $perl, pause => 0);
is_deeply(count_backends(map { $t->get("/n?sid=$sid") } 1 .. 5), { b1 => 5 },
    'rebound session stays after the old server returns');

$t->stop;
done_testing;
