#!/usr/bin/perl
# Density and a full zone: a 1 MB zone keeps the newest 55,000 sessions;
# a zone filled far past its capacity evicts the least recently used, the
# newest sessions all still hit, and the warning is logged once, not per
# eviction.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of);

my $t = StickyTest->new;
$t->write_config(<<'CONF');
http {
    access_log off;
    upstream big {
        sticky_session name=sid zone=big:1m learn=all max_learn=1000000 max_scan=4m;
        server 127.0.0.1:%%PORT_PERL%%;
        server 127.0.0.1:%%PORT_B1%%;
    }
    upstream small {
        sticky_session name=sid zone=small:32k learn=all max_learn=1000000 max_scan=4m;
        server 127.0.0.1:%%PORT_PERL%%;
        server 127.0.0.1:%%PORT_B1%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        add_header X-Sticky $sticky_session_status always;
        location / { proxy_pass http://big; }
        location /small/ { proxy_pass http://small; }
        location = /status { sticky_session_status; }
    }
    server { listen 127.0.0.1:%%PORT_B1%%; location / { return 200 "backend=b1\n"; } }
}
CONF

# /page?from=N&count=M: a page of M links, ids dN .. d(N+M-1).
$t->backend($t->port('PERL'), sub {
    my ($m, $uri) = @_;
    my ($from) = $uri =~ /from=(\d+)/;
    $from //= 0;
    my ($count) = $uri =~ /count=(\d+)/;
    $count //= 0;
    my $page = "backend=perl\n";
    $page .= join '', map { "<a href=\"/n?sid=d$_\">$_</a>\n" } $from .. $from + $count - 1;
    return ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
        . length($page) . "\r\nConnection: close\r\n\r\n", [$page]);
}, pause => 0);
$t->run;


# The Perl backend must answer the learning page (round robin alternates).
sub learn_page {
    my ($prefix, $from, $count) = @_;
    return $t->get_from(perl => "${prefix}page?from=$from&count=$count", timeout => 60);
}

sub hits {
    my ($prefix, @ids) = @_;
    return scalar grep {
        my $r = $t->get("${prefix}n?sid=d$_");
        StickyTest::header($r, 'X-Sticky') eq 'HIT' && backend_of($r) eq 'perl'
    } @ids;
}

# 60,500 sessions into 1 MB (65,528 slots): 5,500 first, then 55,000 newer.
# Every one of the newest 55,000 stays (two buckets per id; one bucket kept
# about 92 %), and a sample of them routes to its server.
learn_page('/', 0, 5_500);
sleep 1.1;    # last use is kept to the second: make the next ones newer
learn_page('/', 5_500, 55_000);
my ($entries) = StickyTest::body($t->get('/status')) =~ /"big":\{"capacity":\d+,"entries":(\d+)/;
cmp_ok($entries // 0, '>=', 55_000, "1m zone holds $entries of 60,500 sessions live (>= 55,000)");
my ($moved) = StickyTest::body($t->get('/status')) =~ /"big":\{[^}]*"moved":(\d+)/;
cmp_ok($moved // 0, '>', 0, "filling it moved sessions to their second bucket ($moved), as the status page says");
my @sample = map { 5_500 + $_ * 27 } 0 .. 1_999;
my $hit = hits('/', @sample);
cmp_ok($hit, '>=', 0.999 * @sample,
    "1m zone: $hit of 2,000 sampled among the newest 55,000 route to their server (>= 99.9 %)");

# A 32k zone (about 1,500 slots) given 20,000 sessions, then 50 newer ones.
learn_page('/small/', 100_000, 20_000);
sleep 1.1;    # last use is kept to the second: make the next ones newer
learn_page('/small/', 200_000, 50);
is(hits('/small/', 200_000 .. 200_049), 50, 'full zone: the 50 newest sessions all hit');
my $old = hits('/small/', map { 100_000 + $_ * 50 } 0 .. 399);
cmp_ok($old, '<', 100, "full zone: most old sessions were evicted ($old of 400 sampled remain)");
my @warn = $t->error_log =~ /zone "small" is full/g;
is(scalar @warn, 1, 'one eviction warning for thousands of evictions');
like($t->error_log, qr/zone "small" is full: the least recently used sessions are evicted \(\d+ so far, capacity \d+\)/,
    'the warning says what happened and the capacity');

$t->stop;
done_testing;
