#!/usr/bin/perl
# WebSocket: an upgrade request carrying a known id goes to its server, and
# the upgraded connection is passed through unscanned (ids in its frames
# teach nothing).

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use StickyTest qw(backend_of sid_of sticky_of);

my $t = StickyTest->new;
$t->write_config(<<'CONF');
http {
    access_log off;
    upstream rt {
        sticky_session name=sid zone=ws:1m;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
        server 127.0.0.1:%%PORT_B3%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / {
            proxy_pass http://rt;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            add_header X-Sticky $sticky_session_status always;
        }
    }
}
CONF
my $app = sub {
    my ($name) = @_;
    return sub {
        my ($method, $uri, $h) = @_;
        if (($h->{upgrade} // '') =~ /websocket/i) {
            # Switch, then echo each line prefixed by this backend's name,
            # with an id in a link, as a chat message might carry.
            return ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                . "X-Backend: $name\r\n\r\n", [], sub {
                    my ($c) = @_;
                    while (defined(my $line = <$c>)) {
                        chomp $line;
                        syswrite $c, "$name:$line <a href=\"/n?sid=ws${name}frame\">x</a>\n";
                    }
                });
        }
        my ($sid) = $uri =~ /sid=(\w+)/;
        $sid //= "$name" . int(rand 1e9);
        return ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n",
            ["backend=$name <a href=\"/n?sid=$sid\">n</a>"]);
    };
};
$t->backend($t->port($_), $app->(lc $_), pause => 0) for qw(B1 B2 B3);
$t->run;

my $page = $t->get('/');
my ($sid, $home) = (sid_of($page), backend_of($page));
ok($sid && $home ne 'none', "a session on $home");

for my $n (1 .. 6) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port('FRONT'), Timeout => 5) or die $!;
    print $s "GET /chat?sid=$sid HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        . "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        sysread($s, my $b, 1) or last;
        $head .= $b;
    }
    my ($status) = $head =~ m{^HTTP/1\.1 (\d+)};
    my ($backend) = $head =~ /^X-Backend:\s*(\w+)/mi;
    is("$status " . ($backend // 'none'), "101 $home", "upgrade $n: switched, on $home");
    print $s "hello $n\n";
    my $echo = <$s>;
    like($echo // '', qr/^$home:hello $n /, "upgrade $n: the connection carries data both ways");
    close $s;
}
isnt(sticky_of($t->get("/n?sid=ws${home}frame")), 'HIT', 'an id inside the upgraded stream teaches nothing');

$t->stop;
done_testing;
