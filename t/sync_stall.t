#!/usr/bin/perl
# A Redis that stops answering (SIGSTOP: the connection stays open, nothing
# comes back) never slows a request: requests keep their usual latency,
# nginx declares the connection dead after 3 s of silence (state "down",
# last_error "timeout"), and reconnects and resyncs once Redis answers again.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of sid_of sticky_of secret_file sync_status wait_for);
use Time::HiRes qw(time sleep);

plan skip_all => 'redis-server not installed (make test installs it)'
    unless grep { -x "$_/redis-server" } split /:/, $ENV{PATH};

my $t = StickyTest->new;
my $redis = $t->redis;
my $key = secret_file($t->dir . '/sync.key', "stall-test-key-0123456789abcdef\n");
$t->write_config(<<"CONF");
worker_processes 2;
http {
    access_log off;
    upstream app {
        sticky_session name=sid zone=stall:1m sync=redis://127.0.0.1:$redis sync_key=$key;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%% reuseport;
        location / {
            proxy_pass http://app;
            add_header X-Sticky \$sticky_session_status always;
        }
        location = /status { sticky_session_status; }
    }
    %%BACKENDS(B1,B2)%%
}
CONF
$t->run;

sub sync_field { sync_status($t)->{ $_[0] } // '' }

wait_for('sync connected', sub { sync_field('state') eq 'connected' }, 10);

my $pid = $t->{redis}{REDIS};
kill 'STOP', $pid;
my ($slowest, @lost) = (0);
my $end = time + 4.5;
my %home;
while (time < $end) {
    my $t0 = time;
    my $r = $t->get('/');
    my $id = sid_of($r);
    $home{$id} = backend_of($r);
    my $again = $t->get("/n?sid=$id");
    my $took = time - $t0;
    $slowest = $took if $took > $slowest;
    push @lost, $id unless backend_of($again) eq $home{$id} && sticky_of($again) eq 'HIT';
}
cmp_ok($slowest, '<', 0.5, sprintf('Redis silent: no request waited for it (slowest pair %.0f ms)', $slowest * 1000));
is_deeply(\@lost, [], scalar(keys %home) . ' sessions learned and used locally meanwhile');
wait_for('after 3 s of silence the connection is declared dead', sub { sync_field('last_error') eq 'timeout' }, 5);
isnt(sync_field('state'), 'connected', 'and the state says so');

kill 'CONT', $pid;
wait_for('Redis answers again: reconnected and resynced', sub { sync_field('state') eq 'connected' }, 15);
my $stored = $t->redis_cli(undef, '--scan', '--pattern', 'sticky:stall:s:*');
my $n = () = $stored =~ /\n/g;
cmp_ok($n, '>=', scalar(keys %home), "the sessions learned while Redis was silent reached it ($n keys)");

$t->stop;
done_testing;
