#!/usr/bin/perl
# Only fresh responses teach: a page served from proxy_cache was not
# produced by a server just now, so the id it carries teaches nothing, even
# when the table has forgotten that id; the response that filled the cache
# did teach.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep);
use StickyTest qw(sticky_of);

my $t = StickyTest->new;
$t->write_config(<<'CONF');
http {
    access_log off;
    proxy_cache_path %%TESTDIR%%/cache keys_zone=pages:1m;
    upstream app {
        sticky_session name=sid zone=cached:1m timeout=1s;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location = /status { sticky_session_status; }
        location / {
            proxy_pass http://app;
            proxy_cache pages;
            proxy_cache_valid 200 1m;
            proxy_cache_key $uri;
            add_header X-Sticky $sticky_session_status always;
            add_header X-Cache $upstream_cache_status always;
        }
    }
    %%BACKENDS(B1,B2)%%
}
CONF
$t->run;

sub learned { (StickyTest::body($t->get('/status')) =~ /"learned":(\d+)/)[0] // -1 }

my $fill = $t->get('/page');
is(StickyTest::header($fill, 'X-Cache'), 'MISS', 'the first response comes from a server');
my ($sid) = StickyTest::body($fill) =~ /sid=(\w+)/;
is(learned(), 1, 'and teaches its id');

sleep 2.2;    # the session idles out; the cached page still carries its id
my $hit = $t->get('/page');
is(StickyTest::header($hit, 'X-Cache'), 'HIT', 'now the page comes from the cache');
like(StickyTest::body($hit), qr/sid=$sid/, 'carrying the old id');
is(learned(), 1, 'a cached page teaches nothing');
isnt(sticky_of($t->get("/n?sid=$sid")), 'HIT', 'the id stays forgotten');

$t->stop;
done_testing;
