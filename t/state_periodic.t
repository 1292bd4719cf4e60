#!/usr/bin/perl
# save_every=: worker 0 writes the state file periodically, from a thread
# of its own (the event loop never walks the table or waits for fsync), so
# a crash that gives the master no chance to write it loses nothing older
# than one period.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of count_backends sid_of);

my $t = StickyTest->new;
$t->write_config(<<'CONF');
worker_processes 2;
http {
    access_log off;
    upstream app {
        sticky_session name=sid zone=periodic:1m state=%%TESTDIR%%/sessions.state save_every=1s;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
    }
    server { listen 127.0.0.1:%%PORT_FRONT%%; location / { proxy_pass http://app; } }
    %%BACKENDS(B1,B2)%%
}
CONF
$t->run;
my %home;
for (1 .. 20) {
    my $r = $t->get('/');
    $home{ sid_of($r) } = backend_of($r);
}
my $file = $t->dir . '/sessions.state';
my $deadline = time + 10;
sleep 0.2 until (-s $file && (stat $file)[9] >= time - 1) || time > $deadline;
ok(-s $file, 'worker 0 wrote the state file while nginx runs');

# A crash: every process killed, nothing written at exit.
sleep 2.5;    # two more periods after the last session, with room for a loaded machine
kill 'KILL', $t->{pid}, $t->workers;
sleep 0.3;
delete $t->{pid};
unlink $t->dir . '/logs/nginx.pid';
$t->run;
like($t->error_log, qr/restored 20 of 20 sessions/, 'all 20 sessions restored after the crash');
my @moved = grep { backend_of($t->get("/n?sid=$_")) ne $home{$_} } sort keys %home;
is_deeply(\@moved, [], 'every session is back on its server');
unlike($t->error_log, qr/cannot write state file|cannot start the state saving thread/, 'no save failed');
$t->stop;
done_testing;
