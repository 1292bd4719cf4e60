#!/usr/bin/perl
# Peers in shared memory (`zone` in the upstream), weights and a backup server:
# sessions stick, new sessions follow the weights, the backup stays idle.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest;

my $t = StickyTest->new;
$t->write_config(<<'CONF');
worker_processes 2;
http {
    access_log off;
    upstream app {
        zone app_peers 64k;
        sticky_session name=sid;
        server 127.0.0.1:%%PORT_B1%% weight=3;
        server 127.0.0.1:%%PORT_B2%%;
        server 127.0.0.1:%%PORT_B3%% backup;
    }
    map $arg_sid $sid { "" $request_id; default $arg_sid; }
    server {
        listen 127.0.0.1:%%PORT_FRONT%% reuseport;
        location / {
            proxy_pass http://app;
            add_header X-Sticky $sticky_session_status always;
        }
    }
    server { listen 127.0.0.1:%%PORT_B1%%; default_type text/html;
             location / { return 200 "backend=b1 <a href=\"/n?sid=$sid\">n</a>"; } }
    server { listen 127.0.0.1:%%PORT_B2%%; default_type text/html;
             location / { return 200 "backend=b2 <a href=\"/n?sid=$sid\">n</a>"; } }
    server { listen 127.0.0.1:%%PORT_B3%%; default_type text/html;
             location / { return 200 "backend=b3 <a href=\"/n?sid=$sid\">n</a>"; } }
}
CONF
$t->run;

sub backend_of { StickyTest::body($_[0]) =~ /backend=(\w+)/ ? $1 : 'none' }

my (%new, @sessions);
for (1 .. 40) {
    my $r = $t->get('/');
    $new{ backend_of($r) }++;
    my ($sid) = StickyTest::body($r) =~ /sid=(\w+)/;
    push @sessions, [$sid, backend_of($r)];
}
ok(!$new{b3}, 'backup server gets no new sessions');
cmp_ok($new{b1} // 0, '>', $new{b2} // 0, 'new sessions follow weights') or diag explain \%new;

my $moved = 0;
for my $s (@sessions) {
    my ($sid, $home) = @$s;
    for (1 .. 3) {
        my $r = $t->get("/n?sid=$sid");
        $moved++ if backend_of($r) ne $home || StickyTest::header($r, 'X-Sticky') ne 'HIT';
    }
}
is($moved, 0, '40 sessions x 3 requests all stick with peers in a zone');

$t->stop;
done_testing;
