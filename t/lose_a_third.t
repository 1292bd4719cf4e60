#!/usr/bin/perl
# Killing the backend that holds a third of the sessions loses only those
# sessions: the others stay where they are, the lost ones are rebound once,
# new sessions go to the live servers, and new sessions reach the killed
# server again once it is back.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of count_backends sticky_of);

my $t = StickyTest->new;
$t->write_config(<<'CONF');
worker_processes 2;
http {
    access_log off;
    upstream app {
        sticky_session name=sid zone=third:1m;
        server 127.0.0.1:%%PORT_B1%% max_fails=1 fail_timeout=1s;
        server 127.0.0.1:%%PORT_B2%% max_fails=1 fail_timeout=1s;
        server 127.0.0.1:%%PORT_B3%% max_fails=1 fail_timeout=1s;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%% reuseport;
        location / {
            proxy_pass http://app;
            proxy_next_upstream error timeout;
            add_header X-Sticky $sticky_session_status always;
        }
    }
}
CONF

sub app {
    my ($name) = @_;
    my $seq = 0;
    return sub {
        my ($m, $uri) = @_;
        my ($sid) = $uri =~ /sid=(\w+)/;
        $sid //= sprintf '%s%d%06d', $name, $$, ++$seq;
        my $page = "backend=$name <a href=\"/n?sid=$sid\">n</a>";
        return ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
            . length($page) . "\r\nConnection: close\r\n\r\n", [$page]);
    };
}
my %pid = map { ($_ => $t->backend($t->port("B$_"), app("b$_"), pause => 0)) } 1 .. 3;
$t->run;


my %home;
for (1 .. 30) {
    my $r = $t->get('/');
    my ($sid) = StickyTest::body($r) =~ /sid=(\w+)/;
    $home{$sid} = backend_of($r);
}
my %per;
$per{$_}++ for values %home;
ok(!(grep { ($per{"b$_"} // 0) < 6 } 1 .. 3), '30 sessions, about a third on each server')
    or diag explain \%per;

kill 'KILL', $pid{3};
waitpid $pid{3}, 0;
@{ $t->{backends} } = grep { $_ != $pid{3} } @{ $t->{backends} };

my (@kept_wrong, %lost, %lost_home);
for my $sid (sort keys %home) {
    my $r = $t->get("/n?sid=$sid");
    if ($home{$sid} eq 'b3') {
        $lost{ StickyTest::status($r) . ' ' . sticky_of($r) }++;
        $lost_home{$sid} = backend_of($r);
    } elsif (backend_of($r) ne $home{$sid} || sticky_of($r) ne 'HIT') {
        push @kept_wrong, "$sid: $home{$sid} -> " . backend_of($r) . ' ' . sticky_of($r);
    }
}
is_deeply(\@kept_wrong, [], 'the sessions of the live servers are untouched');
is_deeply(\%lost, { '200 REBOUND' => $per{b3} }, 'the sessions of the dead server are served and rebound');
my @wandering = grep { backend_of($t->get("/n?sid=$_")) ne $lost_home{$_} } keys %lost_home;
is_deeply(\@wandering, [], 'rebound sessions then stay on their new server');

my %fresh = %{ count_backends(map { $t->get('/') } 1 .. 10) };
ok(!$fresh{b3} && ($fresh{b1} // 0) + ($fresh{b2} // 0) == 10, 'new sessions go to the live servers')
    or diag explain \%fresh;

$pid{3} = $t->backend($t->port('B3'), app('b3'), pause => 0);
sleep 2.2;    # fail_timeout, in whole seconds
my %back = %{ count_backends(map { $t->get('/') } 1 .. 12) };
# nginx restores a failed server's effective weight gradually: some, not a third.
cmp_ok($back{b3} // 0, '>=', 1, 'new sessions reach the returned server again') or diag explain \%back;
my @still = grep { backend_of($t->get("/n?sid=$_")) ne $lost_home{$_} } keys %lost_home;
is_deeply(\@still, [], 'rebound sessions do not bounce back');

$t->stop;
done_testing;
