#!/usr/bin/perl
# A session moves only to a server that answered: when its server is down
# and the fallback times out, nginx's own 504 must not rebind the session
# to the server that never answered.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of);

my $t = StickyTest->new;
$t->write_config(<<'CONF');
http {
    access_log off;
    upstream app {
        sticky_session name=sid zone=answer:64k;
        server 127.0.0.1:%%PORT_HOME%% max_fails=0;
        server 127.0.0.1:%%PORT_SLOW%% max_fails=0;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / {
            proxy_pass http://app;
            proxy_read_timeout 1s;
            proxy_next_upstream error timeout;
            add_header X-Sticky $sticky_session_status always;
        }
    }
}
CONF

my $hang = $t->dir . '/hang';
my $n = 0;
my $page = sub {
    my ($name) = @_;
    return sub {
        my ($method, $uri) = @_;
        # The slow server stops answering while the flag file exists.
        sleep 3 if $name eq 'slow' && -e $hang;
        $n++;
        my ($sid) = $uri =~ /sid=(\w+)/;
        $sid //= "$name$$" . int(rand 1e9);
        return ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n",
            ["backend=$name <a href=\"/n?sid=$sid\">n</a>"]);
    };
};
my $home_pid = $t->backend($t->port('HOME'), $page->('home'), pause => 0);
$t->backend($t->port('SLOW'), $page->('slow'), pause => 0);
$t->run;


# A session on the home server.
my $sid;
for (1 .. 10) {
    my $r = $t->get('/');
    next unless backend_of($r) eq 'home';
    ($sid) = StickyTest::body($r) =~ /sid=(\w+)/;
    last;
}
ok($sid, 'a session learned on the home server');
is(backend_of($t->get("/n?sid=$sid")), 'home', 'and routed there');

# Home is down, the fallback never answers: nginx answers 504 itself.
kill 'KILL', $home_pid;
waitpid $home_pid, 0;
$t->{backends} = [grep { $_ != $home_pid } @{ $t->{backends} }];
open my $fh, '>', $hang or die $!;
close $fh;
my $r = $t->get("/n?sid=$sid");
is(StickyTest::status($r), 504, 'home down and the fallback silent: 504 from nginx');

# Home returns: the session is still its own.
unlink $hang;
$t->backend($t->port('HOME'), $page->('home'), pause => 0);
$t->wait_port($t->port('HOME'));
$r = $t->get("/n?sid=$sid");
is(backend_of($r), 'home', 'the session was not moved to the server that never answered');
is(StickyTest::header($r, 'X-Sticky'), 'HIT', 'and it is a hit there');

$t->stop;
done_testing;
