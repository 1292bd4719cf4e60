#!/usr/bin/perl
# Learning from response headers: Location (redirect after login) and Refresh.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of count_backends);

my $t = StickyTest->new;
$t->write_config(<<'CONF');
http {
    access_log off;
    upstream app {
        sticky_session name=sid;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / { proxy_pass http://app; add_header X-Sticky $sticky_session_status always; }
    }
    server { listen 127.0.0.1:%%PORT_B1%%; absolute_redirect off;
             location /login { return 302 /home?sid=loc-$request_id; }
             location /wait { add_header Refresh "1; url=/next?sid=ref-$request_id"; return 200 "wait"; }
             location /away { return 302 http://elsewhere.example/x?sid=away-$request_id; }
             location / { return 200 "backend=b1"; } }
    server { listen 127.0.0.1:%%PORT_B2%%;
             location / { return 200 "backend=b2"; } }
}
CONF
$t->run;


# Round robin sends the odd requests to b1, which issues the ids.
for my $case (['/login', 'Location', qr/sid=(loc-\w+)/, 'b1'], ['/wait', 'Refresh', qr/sid=(ref-\w+)/, 'b1']) {
    my ($uri, $header, $re, $home) = @$case;
    my ($id);
    for (1 .. 2) {
        my $r = $t->get($uri);
        ($id) = (StickyTest::header($r, $header) // '') =~ $re and last;
    }
    ok($id, "$header carried an id");
    is_deeply(count_backends(map { $t->get("/x?sid=$id") } 1 .. 6), { $home => 6 },
        "id from $header routes to its issuer");
}

my $away;
for (1 .. 2) {
    ($away) = (StickyTest::header($t->get('/away'), 'Location') // '') =~ /sid=(away-\w+)/ and last;
}
ok($away, 'redirect to another host carried an id');
is(StickyTest::header($t->get("/x?sid=$away"), 'X-Sticky'), 'MISS', 'redirects to other hosts teach nothing');

$t->stop;
done_testing;
