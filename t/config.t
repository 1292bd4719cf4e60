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

my $version = StickyTest->new->nginx_version;

my @good = (
    'sticky_session;',
    'sticky_session name=PHPSESSID name=sid zone=web:64k timeout=30m max_id_len=64;',
    'sticky_session learn=all max_learn=1000;',
    "sticky_session; keepalive 16;",
    "zone peers 64k; sticky_session;",
    # A balancer written first places the requests without a live session.
    'least_conn; sticky_session;',
    'random two; sticky_session;',
    'hash $remote_addr consistent; sticky_session;',
    'least_conn; sticky_session; keepalive 16;',
);
# Since 1.29.7 keepalive wraps whatever balancer an upstream ends up with
# once the configuration is read, so its place no longer matters.
push @good, 'keepalive 16; sticky_session;' if $version >= 1_029_007;
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
    ['sticky_session max_learn=64;',
        qr/"sticky_session" directive invalid max_learn "64" \(a number from 1 to 4294967295, with "learn=all"\) in nginx.conf:LINE/],
    ['sticky_session; sticky_session;', qr/"sticky_session" directive is duplicate in nginx.conf:LINE/],
    ['sticky_session; least_conn;', qr/is overridden by a load balancing method specified after it/],
);
push @bad, ['keepalive 16; sticky_session;', qr/"sticky_session" directive must come before "keepalive"/]
    if $version < 1_029_007;
# nginx's own sticky (1.29.6+) in the same upstream, in either order.
push @bad,
    ['sticky learn create=$upstream_cookie_sid lookup=$cookie_sid zone=own:64k; sticky_session;',
        qr/"sticky_session" cannot be combined with "sticky" in upstream "app"/],
    ['sticky_session; sticky learn create=$upstream_cookie_sid lookup=$cookie_sid zone=own:64k;',
        qr/"sticky_session" cannot be combined with "sticky" in upstream "app"/]
    if $version >= 1_029_006;
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

# Two zones writing one state file would overwrite each other.
($ok, $out) = check("sticky_session zone=one:64k state=sessions.state; $servers",
    "upstream other { sticky_session zone=two:64k state=sessions.state; server 127.0.0.1:3; }");
ok(!$ok, 'two zones with one state file: refused');
like($out, qr/state file ".*sessions\.state" is already used by zone "one"/, 'message for one state file in two zones');
# One zone shared by two upstreams keeps one state file.
($ok, $out) = check("sticky_session zone=same:64k state=sessions.state; $servers",
    "upstream other { sticky_session zone=same:64k state=sessions.state; server 127.0.0.1:3; }");
ok($ok, 'a shared zone with its state file') or diag $out;

# nginx's own sticky in another upstream of the same configuration is fine.
if ($version >= 1_029_006) {
    ($ok, $out) = check("sticky_session; $servers",
        "upstream other { sticky cookie srv_id; server 127.0.0.1:3; }");
    ok($ok, 'nginx\'s own sticky in another upstream') or diag $out;
}

done_testing;
