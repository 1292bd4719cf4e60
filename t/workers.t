#!/usr/bin/perl
# Four workers share one table: a cookie-less client following the links its
# backend hands out stays on that backend for 50 steps, whichever worker
# answers each step.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest;

my $t = StickyTest->new;
$t->write_config(<<'CONF');
worker_processes 4;
http {
    access_log off;
    upstream app {
        sticky_session name=sid zone=shared:1m;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
        server 127.0.0.1:%%PORT_B3%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%% reuseport;
        location / {
            proxy_pass http://app;
            add_header X-Worker $pid always;
            add_header X-Sticky $sticky_session_status always;
        }
    }
    %%BACKENDS(B1,B2,B3)%%
}
CONF
$t->run;

my %homes;
for my $client (1 .. 6) {
    my $r = $t->get('/');
    my ($home) = StickyTest::body($r) =~ /backend=(b\d)/;
    my (%backends, %workers, %status);
    for (1 .. 50) {
        my ($link) = StickyTest::body($r) =~ /href="([^"]+)"/;
        $r = $t->get($link);
        $backends{ StickyTest::body($r) =~ /backend=(b\d)/ ? $1 : 'none' }++;
        $workers{ StickyTest::header($r, 'X-Worker') // 'none' }++;
        $status{ StickyTest::header($r, 'X-Sticky') // 'none' }++;
    }
    is_deeply(\%backends, { $home => 50 }, "client $client stayed on $home for 50 steps");
    is_deeply(\%status, { HIT => 50 }, "client $client: every step was a hit");
    $homes{$home}++;
    $homes{workers}{$_}++ for keys %workers;
}
cmp_ok(scalar keys %{ $homes{workers} }, '>', 1, 'more than one worker answered')
    or diag explain $homes{workers};
cmp_ok(scalar(grep { /^b/ } keys %homes), '>', 1, 'new sessions spread over backends');

$t->stop;
done_testing;
