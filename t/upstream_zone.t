#!/usr/bin/perl
# Peers in shared memory (`zone` in the upstream), weights and a backup server:
# sessions stick, new sessions follow the weights, the backup stays idle.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of);

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
    server {
        listen 127.0.0.1:%%PORT_FRONT%% reuseport;
        location / {
            proxy_pass http://app;
            add_header X-Sticky $sticky_session_status always;
        }
    }
    %%BACKENDS(B1,B2,B3)%%
}
CONF
$t->run;


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
