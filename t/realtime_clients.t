#!/usr/bin/perl
# The JSON-handshake app under load: 40 concurrent clients (4 processes of
# 10) each open a session with a long-polling handshake served as
# text/plain, poll, post messages, then upgrade to WebSocket; every request
# of every client reaches the node that opened its session, through 4
# workers, and the sessions spread over all nodes.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use StickyTest;

my $t = StickyTest->new;
$t->write_config(<<'CONF');
worker_processes 4;
http {
    access_log off;
    upstream rt {
        sticky_session name=sid zone=realtime:1m types=text/plain;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
        server 127.0.0.1:%%PORT_B3%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%% reuseport;
        location / {
            proxy_pass http://rt;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
}
CONF
my $node = sub {
    my ($name) = @_;
    my $n = 0;
    return sub {
        my ($method, $uri, $h) = @_;
        if (($h->{upgrade} // '') =~ /websocket/i) {
            return ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", [],
                sub { my ($c) = @_; while (defined(my $l = <$c>)) { syswrite $c, "$name\n" } });
        }
        my $body = $uri =~ /sid=/ ? "node=$name" : sprintf('0{"sid":"%s%d%d","upgrades":["websocket"],"pingInterval":25000}',
            $name, $$, ++$n);
        return ("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " . length($body)
            . "\r\nConnection: close\r\n\r\n", [$body]);
    };
};
$t->backend($t->port($_), $node->(lc $_), pause => 0) for qw(B1 B2 B3);
$t->run;

my $report = $t->dir . '/clients';
my @kids;
for my $proc (1 .. 4) {
    my $pid = fork // die;
    if ($pid == 0) {
        open my $out, '>', "$report.$proc" or die;
        for my $client (1 .. 10) {
            my $hs = StickyTest::body($t->get('/socket.io/?EIO=4&transport=polling'));
            my ($sid) = $hs =~ /"sid":"(\w+)"/;
            my ($home) = ($sid // '') =~ /^(b\d)/;
            my @seen;
            for my $i (1 .. 10) {
                my $r = $i % 5 == 0
                    ? $t->post("/socket.io/?EIO=4&transport=polling&sid=$sid", "42[\"msg\",$i]", type => 'text/plain')
                    : $t->get("/socket.io/?EIO=4&transport=polling&sid=$sid");
                push @seen, StickyTest::body($r) =~ /node=(b\d)/ ? $1 : 'none';
            }
            my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port('FRONT')) or die;
            print $s "GET /socket.io/?EIO=4&transport=websocket&sid=$sid HTTP/1.1\r\nHost: localhost\r\n"
                . "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
            my $head = '';
            while ($head !~ /\r\n\r\n/) { sysread($s, my $b, 1) or last; $head .= $b }
            print $s "2probe\n";
            my $ws = <$s> // 'none';
            chomp $ws;
            close $s;
            push @seen, $head =~ /^HTTP\/1\.1 101/ ? $ws : 'no-upgrade';
            my $bad = grep { $_ ne ($home // '?') } @seen;
            print $out join(' ', $home // 'none', $bad), "\n";
        }
        close $out;
        $t->{owner} = -1;
        exit 0;
    }
    push @kids, $pid;
}
waitpid $_, 0 for @kids;

my (%homes, $clients, $moved);
for my $proc (1 .. 4) {
    open my $in, '<', "$report.$proc" or die "client process $proc wrote nothing";
    while (<$in>) {
        my ($home, $bad) = split;
        $clients++;
        $homes{$home}++;
        $moved += $bad;
    }
}
is($clients, 40, '40 clients ran');
is($moved, 0, 'every poll, post and WebSocket upgrade reached the node that opened the session');
is(scalar(grep { $_ ne 'none' } keys %homes), 3, 'the sessions spread over all three nodes')
    or diag explain \%homes;

$t->stop;
done_testing;
