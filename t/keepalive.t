#!/usr/bin/perl
# One keep-alive client connection through scanned responses: a new session
# learned from the page, hits, a chunked body and a gzip body, many times
# over, all answered on the same connection with nothing logged at info.
# Pins the nginx 1.29+ hang: bindgen's accessor for filter_need_in_memory
# wrote into r->buffered there, so nginx never finished the first response.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use StickyTest;

my $rounds = $ENV{STICKY_KEEPALIVE_ROUNDS} // 250;

my $t = StickyTest->new;
my $backend = sub {
    my ($name) = @_;
    return <<"BACKEND";
    server {
        listen 127.0.0.1:%%PORT_$name%%;
        default_type text/html;
        location / { return 200 "backend=$name <a href=\\"/next?sid=\$sid\\">next</a>\\n"; }
        # No Content-Length once sub_filter has run: the front answers chunked.
        location /chunked {
            sub_filter "CUT" "cut";
            sub_filter_once off;
            return 200 "backend=$name CUT <a href=\\"/next?sid=\$sid\\">next</a> CUT\\n";
        }
        location /gzip {
            gzip on;
            gzip_min_length 0;
            return 200 "backend=$name <a href=\\"/next?sid=\$sid\\">next</a>\\n";
        }
    }
BACKEND
};
$t->write_config(<<"CONF");
http {
    access_log off;
    map \$arg_sid \$sid { "" \$request_id; default \$arg_sid; }
    upstream app {
        sticky_session name=sid zone=keepalive:1m;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        error_log logs/front.log info;
        keepalive_requests 100000;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            add_header X-Sticky \$sticky_session_status always;
            add_header X-Connection \$connection always;
        }
    }
@{[ $backend->('B1') ]}
@{[ $backend->('B2') ]}
}
CONF
$t->run;

my $c = $t->connect;
my ($requests, $ok, %failed, $connection) = (0, 0);
my $check = sub {
    my ($what, $cond) = @_;
    $failed{$what}++ unless $cond;
};
eval {
    for my $round (1 .. $rounds) {
        # A page without an id: its link teaches a new session.
        my ($status, $h, $body) = $c->request('/');
        $requests++;
        $connection //= $h->{'x-connection'};
        my ($home) = $body =~ /backend=(B\d)/;
        my ($sid) = $body =~ /sid=([\w-]+)/;
        $check->('learn: 200 and an id', $status == 200 && $sid && $home);
        $check->('learn: no id in the request', ($h->{'x-sticky'} // '') eq 'NONE');

        # The id, back on the same connection: a hit on the same backend.
        ($status, $h, $body) = $c->request("/page?sid=$sid");
        $requests++;
        $check->('hit: 200 on the home backend', $status == 200 && $body =~ /backend=$home\b/);
        $check->('hit: HIT', ($h->{'x-sticky'} // '') eq 'HIT');

        ($status, $h, $body) = $c->request("/chunked?sid=$sid");
        $requests++;
        $check->('chunked: 200, chunked, home backend',
            $status == 200 && ($h->{'transfer-encoding'} // '') eq 'chunked'
            && $body =~ /backend=$home cut/);

        ($status, $h, $body) = $c->request("/gzip?sid=$sid",
            headers => { 'Accept-Encoding' => 'gzip' });
        $requests++;
        my $plain = '';
        gunzip(\$body => \$plain) or $plain = "gunzip: $GunzipError";
        $check->('gzip: 200, gzip, home backend',
            $status == 200 && ($h->{'content-encoding'} // '') eq 'gzip'
            && $plain =~ /backend=$home\b/);
        $ok++ if !%failed;
    }
    1;
} or diag("after $requests requests: $@");

is($requests, 4 * $rounds, "$requests requests answered on one keep-alive connection");
is($ok, $rounds, 'every round learned, hit, and answered chunked and gzip bodies on the home backend')
    or diag explain \%failed;

# Before the client closes (nginx logs that at info): nothing at info or
# above about this connection (the harness's own probes of the port are).
ok($connection, 'nginx named the connection');
open my $log, '<', $t->dir . '/logs/front.log' or die $!;
my $conn = $connection // 'unknown';
my @logged = grep { /\*\Q$conn\E / } <$log>;
ok(!@logged, 'nothing logged at info or above while the connection was used')
    or diag join '', @logged[0 .. ($#logged < 9 ? $#logged : 9)];

$c->close;
$t->stop;
done_testing;
