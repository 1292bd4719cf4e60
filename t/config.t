#!/usr/bin/perl
# Configuration: what nginx -t accepts, and what it refuses with which message.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest;

sub check {
    my ($upstream_body, $extra) = @_;
    $extra //= '';
    my $t = StickyTest->new;
    $t->write_config(<<"CONF");
http {
    upstream app {
$upstream_body
    }
    $extra
    server { listen 127.0.0.1:%%PORT_FRONT%%; location / { proxy_pass http://app; } }
}
CONF
    my ($ok, $out) = $t->test_config;
    # nginx must point at the line holding the upstream's directives.
    open my $fh, '<', $t->conf_path or die $!;
    my @lines = <$fh>;
    my ($line) = grep { $lines[$_ - 1] =~ /^\Q$upstream_body\E$/ } 1 .. @lines;
    $out =~ s/\Q${\ $t->conf_path }\E:$line\b/nginx.conf:LINE/g if $line;
    return ($ok, $out);
}

my $servers = "server 127.0.0.1:1; server 127.0.0.1:2 backup;";

my @good = (
    'sticky_session;',
    'sticky_session name=PHPSESSID name=sid zone=web:64k timeout=30m max_id_len=64;',
    "sticky_session; keepalive 16;",
    "zone peers 64k; sticky_session;",
);
for my $directive (@good) {
    my ($ok, $out) = check("$directive $servers");
    ok($ok, "accepted: $directive") or diag $out;
}

my @bad = (
    ['sticky_session bogus;', qr/"sticky_session" directive invalid parameter "bogus" in nginx.conf:LINE/],
    ['sticky_session zone=z:1k;', qr/zone "z:1k" is too small/],
    ['sticky_session zone=z;', qr/invalid zone "z" \(expected NAME:SIZE\)/],
    ['sticky_session timeout=soon;', qr/invalid timeout "soon"/],
    ['sticky_session name=a&b;', qr/invalid name "a&b"/],
    ['sticky_session max_id_len=0;', qr/invalid max_id_len "0"/],
    ['sticky_session; sticky_session;', qr/"sticky_session" directive is duplicate in nginx.conf:LINE/],
    ['keepalive 16; sticky_session;', qr/must be the first load balancing directive/],
    ['least_conn; sticky_session;', qr/must be the first load balancing directive/],
    ['sticky_session; least_conn;', qr/is overridden by a load balancing method specified after it/],
);
for my $case (@bad) {
    my ($directive, $want) = @$case;
    my ($ok, $out) = check("$directive $servers");
    ok(!$ok, "refused: $directive");
    like($out, $want, "message for: $directive");
}

# sticky_session outside upstream{} is not allowed.
my ($ok, $out) = check($servers, 'sticky_session;');
ok(!$ok, 'refused outside upstream');
like($out, qr/"sticky_session" directive is not allowed here/, 'message outside upstream');

# Two upstreams may share one zone.
($ok, $out) = check("sticky_session zone=same:64k; $servers",
    "upstream other { sticky_session zone=same:64k; server 127.0.0.1:3; }");
ok($ok, 'two upstreams share a zone') or diag $out;

done_testing;
