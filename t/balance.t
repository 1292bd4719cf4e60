#!/usr/bin/perl
# balance=sessions: a server that joins a pool late (or comes back empty)
# receives the new sessions until it holds its share, where round robin
# would leave it behind for as long as the old sessions live. Measured as
# the spread of live sessions per server.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of sid_of);

my $t = StickyTest->new;

sub config {
    my ($servers) = @_;
    my $list = join "\n", map { "        server 127.0.0.1:%%PORT_B$_%%;" } @$servers;
    $t->write_config(<<"CONF");
worker_processes 2;
http {
    access_log off;
    upstream by_sessions {
        sticky_session name=sid zone=by_sessions:1m balance=sessions;
$list
    }
    upstream expiring {
        sticky_session name=sid zone=expiring:1m balance=sessions timeout=2s;
$list
    }
    upstream by_requests {
        sticky_session name=sid zone=by_requests:1m;
$list
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%% reuseport;
        location /s/ { proxy_pass http://by_sessions/; }
        location /r/ { proxy_pass http://by_requests/; }
        location /e/ { proxy_pass http://expiring/; }
        location = /status { sticky_session_status; }
    }
    %%BACKENDS(B1,B2,B3)%%
}
CONF
}

# Live sessions per server of $zone, from the status page: { b1 => n, ... }.
sub held {
    my ($zone) = @_;
    my ($z) = StickyTest::body($t->get('/status')) =~ /"\Q$zone\E":\{.*?"servers":\{([^}]*)\}/s;
    my %by_port = map { $t->port("B$_") => "b$_" } 1 .. 3;
    my %n;
    while (($z // '') =~ /"127\.0\.0\.1:(\d+)":(\d+)/g) { $n{ $by_port{$1} } = $2 }
    return \%n;
}

sub new_sessions {
    my ($prefix, $n) = @_;
    my %got;
    for (1 .. $n) {
        $got{ backend_of($t->get("$prefix")) }++;
    }
    return \%got;
}

config([1, 2]);
$t->run;
my $s1 = new_sessions('/s/', 60);
my $r1 = new_sessions('/r/', 60);
my $e1 = new_sessions('/e/', 30);
is_deeply($s1, { b1 => 30, b2 => 30 }, 'two servers share the first 60 sessions evenly');

# b3 joins empty.
config([1, 2, 3]);
$t->reload;
my $s2 = new_sessions('/s/', 60);
my $r2 = new_sessions('/r/', 60);
cmp_ok($s2->{b3} // 0, '>=', 38, "balance=sessions: the new server took $s2->{b3} of 60 new sessions");
cmp_ok($r2->{b3} // 0, '<=', 22, "(round robin gave it $r2->{b3})");
my $spread = sub {
    my @n = sort { $a <=> $b } values %{ $_[0] };
    return $n[-1] - $n[0];
};
my $held = held('by_sessions');
is(scalar keys %$held, 3, 'the status page counts all three servers');
cmp_ok($spread->($held), '<=', 2, 'after 120 sessions each server holds its share: ' . join ' ', map { "$_=$held->{$_}" } sort keys %$held);
cmp_ok($spread->(held('by_requests')), '>=', 15, 'where round robin leaves the late server behind');

# Every placed session sticks.
my @moved;
for (1 .. 20) {
    my $r = $t->get('/s/');
    my ($id, $home) = (sid_of($r), backend_of($r));
    push @moved, $id unless backend_of($t->get("/s/n?sid=$id")) eq $home;
}
is_deeply(\@moved, [], 'sessions placed by count stick to their server');

# Sessions that ended stop counting once worker 0 recounts (every 5 s): the
# 30 expired sessions of b1 and b2 no longer push new ones onto b3.
sleep 8;
is_deeply(held('expiring'), { b1 => 0, b2 => 0, b3 => 0 }, 'expired sessions no longer counted');
my $e2 = new_sessions('/e/', 30);
cmp_ok($e2->{b3} // 0, '<=', 12, "after the recount new sessions spread again (b3 got $e2->{b3} of 30)");
my $recounted = held('by_sessions');
cmp_ok($spread->($recounted), '<=', 2, 'a recount of live sessions keeps the spread even');

$t->stop;
done_testing;
