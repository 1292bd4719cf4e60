#!/usr/bin/perl
# max_scan=: a response's body is scanned up to that many bytes (after
# inflating), however it is split or compressed; an id past the budget is
# not learned and the stop is counted on the status page.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP qw(decode_json);
use IO::Compress::Gzip qw(gzip $GzipError);
use StickyTest;

my $t = StickyTest->new;
$t->write_config(<<'CONF');
http {
    access_log off;
    upstream app {
        sticky_session name=sid zone=budget:64k max_scan=4k;
        server 127.0.0.1:%%PORT_B1%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / {
            proxy_pass http://app;
            proxy_buffering off;
            add_header X-Sticky $sticky_session_status always;
        }
        location = /status { sticky_session_status; }
    }
}
CONF

my $filler = "<p>" . ("lorem ipsum " x 100) . "</p>\n";    # 1.2 KB
$t->backend($t->port('B1'), sub {
    my ($method, $uri) = @_;
    my ($at, $id, $how) = $uri =~ m{^/page/(\d+)/(\w+)/(\w+)} or return ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n", ["ok"]);
    my $body = ($filler x $at) . "<a href=\"/n?sid=$id\">n</a>\n" . ($filler x 2);
    my $head = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n";
    if ($how eq 'gzip') {
        my $z;
        gzip(\$body => \$z, Minimal => 1) or die $GzipError;
        return ($head . "Content-Encoding: gzip\r\n\r\n", [$z]);
    }
    # Pieces of 700 bytes: the budget runs out across buffers.
    return ($head . "\r\n", $how eq 'split' ? [unpack '(a700)*', $body] : [$body]);
}, pause => 0.005);
$t->run;

sub learned {
    my ($id) = @_;
    return StickyTest::header($t->get("/n?sid=$id"), 'X-Sticky') eq 'HIT' ? 1 : 0;
}
sub limited { decode_json(StickyTest::body($t->get('/status')))->{zones}{budget}{scan_limited} }

my %want = (
    # id after 1 filler (1.2 KB): inside the 4 KB budget
    early => [1, 1],
    # id after 5 fillers (6 KB): past it
    late => [5, 0],
);
my $stops = 0;
for my $how ('whole', 'split', 'gzip') {
    for my $case (sort keys %want) {
        my ($at, $expect) = @{ $want{$case} };
        my $id = "$case$how" . int(rand 1e6);
        my $r = $t->get("/page/$at/$id/$how");
        is(StickyTest::status($r), 200, "$case id, $how body: answered");
        my $len = length StickyTest::body($r);
        ok($len > ($how eq 'gzip' ? 50 : 1000), "$case id, $how body: passed on whole ($len bytes)");
        is(learned($id), $expect, "$case id, $how body: " . ($expect ? 'learned' : 'not learned past max_scan'));
        $stops++ unless $expect;
    }
}
is(limited(), $stops, 'every scan stopped by max_scan is counted');

$t->stop;
done_testing;
