#!/usr/bin/perl
# Logs: no raw session id reaches the error log above debug level; with a
# --with-debug nginx (Debian's), `error_log ... debug` traces each decision
# with the sticky_session: prefix.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Time::HiRes qw(sleep);

my $with_debug = `'${\ ($ENV{STICKY_NGINX} // "$StickyTest::ROOT/build/nginx")}' -V 2>&1` =~ /--with-debug/;

for my $level ('info', $with_debug ? ('debug') : ()) {
    my $t = StickyTest->new;
    $t->write_config(<<'CONF', log_level => $level);
http {
    access_log off;
    default_type text/html;
    upstream app {
        sticky_session name=sid zone=log:64k;
        server 127.0.0.1:%%PORT_B1%% max_fails=1;
        server 127.0.0.1:%%PORT_DEAD%%;
    }
    map $arg_sid $sid { "" $request_id; default $arg_sid; }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / { proxy_pass http://app; proxy_next_upstream error; }
        # A mirror subrequest proxies the same body to the same upstream.
        client_body_buffer_size 1k;
        client_body_temp_path %%TESTDIR%%/body;
        location /mirrored { mirror /copy; proxy_pass http://app; }
        location = /copy { internal; proxy_pass http://app; }
    }
    # A large page for a slow client: it spills to a temporary file.
    server {
        listen 127.0.0.1:%%PORT_SLOW%% sndbuf=4k;
        location /big {
            proxy_pass http://app;
            sendfile on;
            proxy_buffers 4 4k;
            proxy_temp_path %%TESTDIR%%/spill;
        }
    }
    server { listen 127.0.0.1:%%PORT_B1%%; location / { return 200 "<a href=\"/n?sid=$sid\">n</a>"; }
             location /big { root %%TESTDIR%%; } }
}
CONF
    $t->port('DEAD');    # chosen free, nothing listens there
    $t->run;
    my @ids;
    for (1 .. 4) {
        my ($id) = StickyTest::body($t->get('/')) =~ /sid=(\w+)/;
        push @ids, $id if $id;
        $t->get("/n?sid=$id") if $id;
        $t->get('/n?sid=someonesguess1234');
    }
    # The page teaches its id at once (learn=first); the rest, spilled to a
    # temporary file for a client that reads slowly, is no longer asked for
    # in memory and still arrives whole.
    if ($level eq 'debug') {
        open my $fh, '>', $t->dir . '/big' or die $!;
        print $fh "<a href=\"/n?sid=bigpage1\">n</a>\n", ("<p>" . ("x" x 1000) . "</p>\n") x 2000;
        close $fh;
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port('SLOW')) or die $!;
        setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4096);
        print $s "GET /big HTTP/1.0\r\nHost: localhost\r\n\r\n";
        my ($got, $n) = ('', 0);
        while (1) {
            $n = sysread $s, my $buf, 4096;
            last unless $n;
            $got .= $buf;
            sleep 0.002;
        }
        ok(length $got > 2_000_000 && $got =~ /<\/p>\n\z/, 'debug: the large page arrived whole');
    }
    # A form body in a temporary file, read by the request and its mirror.
    $t->post('/mirrored', 'pad=' . ('x' x 4000) . "&sid=$ids[0]");
    $t->stop;
    my $log = $t->error_log;
    if ($level eq 'info') {
        ok(@ids >= 2, 'sessions were created');
        # nginx's own messages quote the request line; ours must not quote ids.
        my $ours = join "\n", grep { /sticky_session/ } split /\n/, $log;
        is_deeply([grep { index($ours, $_) >= 0 } @ids, 'someonesguess1234'], [],
            'no session id in the module\'s error log lines at info level');
    } else {
        like($log, qr/\[debug\].*sticky_session: id lookup HIT/, 'debug: lookup decisions');
        like($log, qr/\[debug\].*sticky_session: id lookup MISS/, 'debug: misses');
        like($log, qr/\[debug\].*sticky_session: sticky peer/, 'debug: sticky peer choice');
        like($log, qr/\[debug\].*sticky_session: round robin/, 'debug: round robin fallback');
        like($log, qr/\[debug\].*sticky_session: learned id for server/, 'debug: learning');
        my $gathered = () = $log =~ /sticky_session: request body gathered/g;
        is($gathered, 1, 'debug: a body shared with a subrequest is gathered once');
    }
}
done_testing;
