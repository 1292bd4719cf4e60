#!/usr/bin/perl
# Every configuration shipped in nginx-conf/ is accepted by nginx -t with the
# module built here (its load_module, pid and error_log lines replaced by the
# harness's own); the demo (`make run`) does what its instructions say, on
# free ports instead of 8080-8083.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest;

my @files = sort glob "$StickyTest::ROOT/nginx-conf/*.conf";
cmp_ok(scalar @files, '>=', 3, 'demo and recipes present');
for my $file (@files) {
    open my $fh, '<', $file or die "$file: $!";
    my $conf = do { local $/; <$fh> };
    $conf =~ s/^\s*(load_module|pid|error_log)\b[^;]*;//mg;
    my $t = StickyTest->new;
    $t->write_config($conf);
    # nginx's stock fastcgi_params, for recipes that include it.
    $t->write_fastcgi_params if $conf =~ /include fastcgi_params;/;
    my ($ok, $out) = $t->test_config;
    (my $name = $file) =~ s{.*/}{};
    ok($ok, "$name: nginx -t accepts it") or diag $out;
    like($conf, qr/\bsticky_session\b/, "$name: uses sticky_session");
}
# The demo: a session sticks, and its status page shows the table filling.
open my $fh, '<', "$StickyTest::ROOT/nginx-conf/demo.conf" or die $!;
my $demo = do { local $/; <$fh> };
$demo =~ s/^\s*(load_module|pid|error_log)\b[^;]*;//mg;
$demo =~ s/^\s*access_log\b[^;]*;//mg;
$demo =~ s/127\.0\.0\.1:808(\d)/"127.0.0.1:%%PORT_D$1%%"/ge;
my $t = StickyTest->new;
$t->write_config($demo);
$t->run;
$t->{ports}{FRONT} = $t->port('D0');
my $page = $t->get('/');
my ($sid) = StickyTest::body($page) =~ /sid=([0-9a-f]+)/;
my ($home) = StickyTest::body($page) =~ /backend (\d+)/;
ok($sid && $home, 'demo: a new visitor gets a session and a backend');
my %seen;
$seen{ StickyTest::body($t->get("/cart?sid=$sid")) =~ /backend (\d+)/ ? $1 : 'none' }++ for 1 .. 6;
is_deeply(\%seen, { $home => 6 }, 'demo: following the links stays on that backend');
my $status = StickyTest::body($t->get('/sticky-status'));
like($status, qr/"zones":\{"demo":\{"capacity":\d+,"entries":1,"hits":6,/, 'demo: the status page shows the session and its hits');
like(StickyTest::body($t->get('/sticky-status?format=prometheus')), qr/^sticky_session_entries\{zone="demo"\} 1$/m,
    'demo: and in Prometheus format');
$t->stop;

done_testing;
