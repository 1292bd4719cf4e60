#!/usr/bin/perl
# Backup servers: while every primary is down, sessions started on a backup
# stick to that backup (two backups, so round robin alone would alternate);
# when the primaries return, those sessions return to them and are rebound.
# With and without peers in a shared `zone`.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest;

for my $zone ('', 'zone app_peers 64k;') {
    my $t = StickyTest->new;
    my $config = sub {
        my ($down) = @_;
        my $d = $down ? ' down' : '';
        $t->write_config(<<"CONF");
http {
    access_log off;
    default_type text/html;
    upstream app {
        $zone
        sticky_session name=sid zone=bk:64k;
        server 127.0.0.1:%%PORT_B1%%$d;
        server 127.0.0.1:%%PORT_B2%%$d;
        server 127.0.0.1:%%PORT_B3%% backup;
        server 127.0.0.1:%%PORT_B4%% backup;
    }
    map \$arg_sid \$sid { "" \$request_id; default \$arg_sid; }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / {
            proxy_pass http://app;
            add_header X-Sticky \$sticky_session_status always;
        }
    }
    server { listen 127.0.0.1:%%PORT_B1%%; location / { return 200 "backend=b1 <a href=\\"/n?sid=\$sid\\">n</a>"; } }
    server { listen 127.0.0.1:%%PORT_B2%%; location / { return 200 "backend=b2 <a href=\\"/n?sid=\$sid\\">n</a>"; } }
    server { listen 127.0.0.1:%%PORT_B3%%; location / { return 200 "backend=b3 <a href=\\"/n?sid=\$sid\\">n</a>"; } }
    server { listen 127.0.0.1:%%PORT_B4%%; location / { return 200 "backend=b4 <a href=\\"/n?sid=\$sid\\">n</a>"; } }
}
CONF
    };
    my $label = $zone ? 'zone' : 'no zone';
    sub who { StickyTest::body($_[0]) =~ /backend=(b\d)/ ? $1 : 'none' }

    $config->(1);
    $t->run;
    my (%home, %started);
    for (1 .. 6) {
        my $r = $t->get('/');
        my ($sid) = StickyTest::body($r) =~ /sid=(\w+)/;
        $home{$sid} = who($r);
        $started{ who($r) }++;
    }
    is_deeply([sort keys %started], ['b3', 'b4'], "$label: primaries down, sessions start on both backups");
    my @wrong;
    for my $sid (keys %home) {
        for (1 .. 4) {
            my $r = $t->get("/n?sid=$sid");
            push @wrong, "$sid $home{$sid} -> " . who($r) . " " . StickyTest::header($r, "X-Sticky") unless who($r) eq $home{$sid}
                && StickyTest::header($r, 'X-Sticky') eq 'HIT';
        }
    }
    is_deeply(\@wrong, [], "$label: each session sticks to its backup while primaries are down");

    $config->(0);
    $t->reload;
    my (%status, %now);
    for my $sid (keys %home) {
        my $r = $t->get("/n?sid=$sid");
        $status{ StickyTest::header($r, 'X-Sticky') }++;
        $now{$sid} = who($r);
    }
    is_deeply(\%status, { REBOUND => 6 }, "$label: primaries back, backup sessions return and are rebound");
    ok(!(grep { /b[34]/ } values %now), "$label: now on primaries");
    @wrong = grep { who($t->get("/n?sid=$_")) ne $now{$_} } keys %now;
    is_deeply(\@wrong, [], "$label: and stay there");
    $t->stop;
}
done_testing;
