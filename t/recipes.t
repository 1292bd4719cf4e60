#!/usr/bin/perl
# Every configuration shipped in nginx-conf/ is accepted by nginx -t with the
# module built here (its load_module, pid and error_log lines replaced by the
# harness's own).

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
    my ($ok, $out) = $t->test_config;
    (my $name = $file) =~ s{.*/}{};
    ok($ok, "$name: nginx -t accepts it") or diag $out;
    like($conf, qr/\bsticky_session\b/, "$name: uses sticky_session");
}
done_testing;
