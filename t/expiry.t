#!/usr/bin/perl
# Idle expiry: a session unused for longer than timeout= is forgotten; use
# refreshes it.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep);
use StickyTest;

my $t = StickyTest->new;
$t->write_config(<<'CONF');
http {
    access_log off;
    upstream app {
        sticky_session name=sid timeout=3s;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
    }
    map $arg_sid $sid { "" $request_id; default $arg_sid; }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / {
            proxy_pass http://app;
            add_header X-Sticky $sticky_session_status always;
        }
    }
    server { listen 127.0.0.1:%%PORT_B1%%; default_type text/html;
             location / { return 200 "b1 <a href=\"/n?sid=$sid\">n</a>"; } }
    server { listen 127.0.0.1:%%PORT_B2%%; default_type text/html;
             location / { return 200 "b2 <a href=\"/n?sid=$sid\">n</a>"; } }
}
CONF
$t->run;

my ($a) = StickyTest::body($t->get('/')) =~ /sid=(\w+)/;
my ($b) = StickyTest::body($t->get('/')) =~ /sid=(\w+)/;
is(StickyTest::header($t->get("/n?sid=$a"), 'X-Sticky'), 'HIT', 'fresh session hits');

# Keep $a busy while $b idles past the timeout.
for (1 .. 5) {
    sleep 1;
    is(StickyTest::header($t->get("/n?sid=$a"), 'X-Sticky'), 'HIT', "used session still hits after ${_}s");
}
is(StickyTest::header($t->get("/n?sid=$b"), 'X-Sticky'), 'EXPIRED', 'idle session expired');

my %spread;
$spread{ StickyTest::body($t->get("/n?sid=$b")) =~ /^(b\d)/ ? $1 : 'none' }++ for 1 .. 4;
is(scalar keys %spread, 2, 'expired id is balanced normally and not relearned from the echo');

$t->stop;
done_testing;
