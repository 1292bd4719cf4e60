#!/usr/bin/perl
# Logs: no raw session id reaches the error log above debug level; with a
# --with-debug nginx (Debian's), `error_log ... debug` traces each decision
# with the sticky_session: prefix.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest;

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
    server { listen 127.0.0.1:%%PORT_B1%%; location / { return 200 "<a href=\"/n?sid=$sid\">n</a>"; } }
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
