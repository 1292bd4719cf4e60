#!/usr/bin/perl
# fallback=off with servers that come from DNS (`resolve`, nginx >= 1.27.3):
# a session whose server is down gets 502 named after the upstream (never a
# peer's name that may be freed), and a session whose address left DNS falls
# back and is rebound, as a removed server's would.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of sticky_of);
use Time::HiRes qw(sleep time);

my $t = StickyTest->new(allow_alerts => 'no live upstreams');
plan skip_all => 'server ... resolve needs nginx >= 1.27.3' if $t->nginx_version < 1_027_003;
$t->dns('app.test' => ['127.0.0.2', '127.0.0.3']);
$t->write_config(<<'CONF');
http {
    access_log off;
    resolver 127.0.0.1:%%PORT_DNS%% valid=1s ipv6=off;
    upstream app {
        zone app 64k;
        sticky_session name=sid zone=strict_resolve:64k fallback=off;
        server app.test:%%PORT_APP%% resolve max_fails=1 fail_timeout=30s;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / {
            proxy_pass http://app;
            proxy_next_upstream error timeout;
            add_header X-Sticky $sticky_session_status always;
            add_header X-Upstream $upstream_addr always;
        }
    }
}
CONF
my %pid;
my $page = sub {
    my ($addr) = @_;
    return sub {
        my ($m, $uri) = @_;
        my ($sid) = $uri =~ /sid=(\w+)/;
        $sid //= 's' . int(rand 1e9);
        return ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n",
            ["backend=$addr <a href=\"/n?sid=$sid\">n</a>"]);
    };
};
for my $addr ('127.0.0.2', '127.0.0.3') {
    $pid{$addr} = $t->backend($t->port('APP'), $page->($addr =~ s/\./_/gr), addr => $addr, pause => 0);
}
$t->run;

# nginx resolves the name after it starts.
my $r;
my $deadline = time + 10;
do { $r = $t->get('/'); sleep 0.2 if StickyTest::status($r) != 200 }
    until StickyTest::status($r) == 200 || time > $deadline;
is(StickyTest::status($r), 200, 'the name resolved, a backend answered');
my ($sid) = StickyTest::body($r) =~ /sid=(\w+)/;
my $home = backend_of($r);
(my $home_addr = $home) =~ s/_/./g;
my ($other_addr) = grep { $_ ne $home_addr } keys %pid;
is(backend_of($t->get("/n?sid=$sid")), $home, "the session sticks to $home_addr");

# Its server is down: 502, named after the upstream.
kill 'KILL', $pid{$home_addr};
waitpid $pid{$home_addr}, 0;
$t->{backends} = [grep { $_ != $pid{$home_addr} } @{ $t->{backends} }];
$t->get("/n?sid=$sid");    # marks it failed
$r = $t->get("/n?sid=$sid");
is(StickyTest::status($r), 502, 'its server down, fallback=off: 502');
like(StickyTest::header($r, 'X-Upstream') // '', qr/(^|, )app$/, 'named after the upstream');

# Its address leaves DNS: the server is gone, so the session falls back.
$t->dns('app.test' => [$other_addr]);
$deadline = time + 10;
do { sleep 0.5; $r = $t->get("/n?sid=$sid") } until StickyTest::status($r) == 200 || time > $deadline;
is(StickyTest::status($r), 200, 'its address gone from DNS: served by the remaining server');
is(sticky_of($r), 'REBOUND', 'and rebound there');
is(backend_of($t->get("/n?sid=$sid")), $other_addr =~ s/\./_/gr, 'where it then stays');

$t->stop;
done_testing;
