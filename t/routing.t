#!/usr/bin/perl
# Routing by a learned id; unknown and absent ids are balanced normally and
# never enter the table.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of sid_of);

my $t = StickyTest->new;
$t->write_config(<<'CONF');
http {
    access_log off;
    upstream app {
        sticky_session name=sid;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
        server 127.0.0.1:%%PORT_B3%%;
    }
    map $arg_sid $sid { "" $request_id; default $arg_sid; }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / {
            proxy_pass http://app;
            add_header X-Sticky $sticky_session_status always;
            add_header X-Sticky-Id $sticky_session_id always;
        }
    }
    server { listen 127.0.0.1:%%PORT_B1%%; default_type text/html;
             location / { return 200 "backend=b1 <a href=\"/next?x=1&amp;sid=$sid\">next</a>\n"; } }
    server { listen 127.0.0.1:%%PORT_B2%%; default_type text/html;
             location / { return 200 "backend=b2 <a href=\"/next?x=1&amp;sid=$sid\">next</a>\n"; } }
    server { listen 127.0.0.1:%%PORT_B3%%; default_type text/html;
             location / { return 200 "backend=b3 <a href=\"/next?x=1&amp;sid=$sid\">next</a>\n"; } }
}
CONF
$t->run;


# First visit: no id; the backend hands one out and it is learned.
my $first = $t->get('/');
is(StickyTest::header($first, 'X-Sticky'), 'NONE', 'first request carries no id');
my $sid = sid_of($first);
ok($sid, 'backend handed out an id');
my $home = backend_of($first);

my (%backends, %statuses);
for (1 .. 50) {
    my $r = $t->get("/next?x=1&sid=$sid");
    $backends{ backend_of($r) }++;
    $statuses{ StickyTest::header($r, 'X-Sticky') // 'none' }++;
}
is_deeply(\%backends, { $home => 50 }, 'learned id: 50 requests, one backend');
is_deeply(\%statuses, { HIT => 50 }, 'every request was a hit');
is(StickyTest::header($t->get("/next?sid=$sid"), 'X-Sticky-Id'), $sid, '$sticky_session_id is the routing id');

# Absent ids spread over all backends (round robin).
my %absent;
$absent{ backend_of($t->get('/plain')) }++ for 1 .. 6;
is(scalar keys %absent, 3, 'requests without id are balanced') or diag explain \%absent;

# An unknown id is balanced, and the backend echoing it does not teach it.
my (%unknown, %unknown_status);
for (1 .. 6) {
    my $r = $t->get('/next?sid=clientchosen42');
    $unknown{ backend_of($r) }++;
    $unknown_status{ StickyTest::header($r, 'X-Sticky') // 'none' }++;
}
is(scalar keys %unknown, 3, 'unknown id stays unknown and is balanced') or diag explain \%unknown;
is_deeply(\%unknown_status, { MISS => 6 }, 'unknown id is a miss every time');

# Invalid ids are ignored, not errors.
my $bad = $t->get('/next?sid=' . ('a' x 200));
is(StickyTest::status($bad), 200, 'over-long id is served');
is(StickyTest::header($bad, 'X-Sticky'), 'NONE', 'over-long id is ignored');
my $junk = $t->get('/next?sid=%ZZ%00<>&sid=');
is(StickyTest::status($junk), 200, 'junk id is served');

$t->stop;
done_testing;
