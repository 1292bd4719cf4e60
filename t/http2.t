#!/usr/bin/perl
# HTTP/2 clients (h2c, and h2 over TLS with ALPN) get the same stickiness as
# HTTP/1: the id in the URL routes, and a page's links teach. Uses curl.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest;

plan skip_all => 'curl with HTTP/2 is needed' unless `curl -V 2>/dev/null` =~ /\bHTTP2\b/;

my $t = StickyTest->new;
my $dir = $t->dir;
system("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
    . "-keyout $dir/key.pem -out $dir/cert.pem >/dev/null 2>&1") == 0 or die "openssl failed";
# `http2 on;` from 1.25.1; before, a listen parameter.
my ($h2, $listen_h2) = $t->nginx_version >= 1_025_001 ? ('http2 on;', '') : ('', ' http2');
$t->write_config(<<"CONF");
http {
    access_log off;
    upstream app {
        sticky_session name=sid zone=h2:1m;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
        server 127.0.0.1:%%PORT_B3%%;
    }
    server {
        listen 127.0.0.1:%%PORT_H2C%%$listen_h2;
        $h2
        location / { proxy_pass http://app; add_header X-Sticky \$sticky_session_status always; }
    }
    server {
        listen 127.0.0.1:%%PORT_H2%% ssl$listen_h2;
        $h2
        ssl_certificate %%TESTDIR%%/cert.pem;
        ssl_certificate_key %%TESTDIR%%/key.pem;
        location / { proxy_pass http://app; add_header X-Sticky \$sticky_session_status always; }
    }
    %%BACKENDS(B1,B2,B3)%%
}
CONF
$t->run;

for my $case (['h2c', '--http2-prior-knowledge', 'http', 'H2C'], ['h2', '--http2', 'https', 'H2']) {
    my ($what, $flag, $scheme, $port) = @$case;
    my $base = "$scheme://127.0.0.1:" . $t->port($port);
    my $curl = sub { `curl -sk $flag -D - '$base$_[0]'` };
    my $first = $curl->('/');
    like($first, qr{^HTTP/2 200}m, "$what: answered over HTTP/2");
    my ($sid) = $first =~ /sid=(\w+)/;
    my ($home) = $first =~ /backend=(b\d)/;
    ok($sid && $home, "$what: a new session on $home");
    my %seen;
    for (1 .. 6) {
        my $r = $curl->("/n?sid=$sid");
        my ($b) = $r =~ /backend=(b\d)/;
        my ($s) = $r =~ /^x-sticky:\s*(\w+)/mi;
        $seen{ ($b // 'none') . ' ' . ($s // 'none') }++;
    }
    is_deeply(\%seen, { "$home HIT" => 6 }, "$what: every request on $home, each a hit");
}

$t->stop;
done_testing;
