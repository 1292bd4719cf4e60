#!/usr/bin/perl
# Two nginx sharing their sessions through Redis, and a PHP-like application
# behind both (t/lib/PhpApp.pm: ids in links, frames and image maps, a hidden
# form field, a POST login that regenerates the id and redirects). Each
# client alternates between the two nginx on every request, reading each
# page for 20 ms as a person would, and must reach the backend that holds
# its session every time.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(secret_file sync_status);
use PhpApp qw(app page_of who);
use Time::HiRes qw(sleep);

plan skip_all => 'redis-server not installed (make test installs it)'
    unless grep { -x "$_/redis-server" } split /:/, $ENV{PATH};

my $apps = StickyTest->new;
$apps->write_config("http { access_log off; }\n");
$apps->backend($apps->port("B$_"), app("b$_"), pause => 0.0005) for 1 .. 3;
$apps->run;
my $redis = $apps->redis;
my $key = secret_file($apps->dir . '/sync.key', "php-app-sync-key-0123456789\n");

sub lb {
    my $lb = StickyTest->new;
    my $servers = join '', map { "        server 127.0.0.1:" . $apps->port("B$_") . ";\n" } 1 .. 3;
    $lb->write_config(<<"CONF");
worker_processes 2;
http {
    access_log off;
    upstream php {
        sticky_session name=PHPSESSID zone=php:1m sync=redis://127.0.0.1:$redis sync_key=$key;
$servers    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%% reuseport;
        location / {
            proxy_pass http://php;
            add_header X-Sticky \$sticky_session_status always;
        }
        location = /status { sticky_session_status; }
    }
}
CONF
    return $lb->run;
}

my @lb = (lb(), lb());
for my $lb (@lb) {
    my $deadline = time + 10;
    sleep 0.05 until (sync_status($lb)->{state} // '') eq 'connected' || time > $deadline;
}

my $n = 0;
# The next request of a client goes to the other nginx, after reading time.
sub next_lb { sleep 0.02; return $lb[ $n++ % 2 ] }

my %homes;
for my $client (1 .. 6) {
    my %h = $client % 2 ? () : (headers => { 'Accept-Encoding' => 'gzip' });
    my $r = next_lb()->get('/', %h);
    my $page = page_of($r);
    my ($home) = who($page);
    my (@wrong, @lost);
    my $check = sub {
        my ($what, $page) = @_;
        my ($b, $state) = who($page);
        push @wrong, "$what on $b" if $b ne $home;
        push @lost, $what if $state eq 'unknown';
    };
    for my $step (1 .. 4) {
        for my $re (qr/<a href="([^"]+)"/, qr/href='([^']+)'/, qr/<frame src=([^>\s]+)>/, qr/<a HREF="([^"]+)"/) {
            my ($link) = $page =~ $re or do { push @lost, "no link $re"; next };
            $link =~ s/&amp;/&/g;
            $link =~ s/#.*//;
            my $resp = next_lb()->get($link, %h);
            $page = page_of($resp);
            $check->("step $step $link (" . (StickyTest::header($resp, 'X-Sticky') // '') . ")", $page);
        }
        next unless $step == 2;
        my ($sid) = $page =~ /name="PHPSESSID" value="([^"]+)"/;
        my $resp = next_lb()->post('/login.php', "PHPSESSID=$sid&user=alice", %h);
        is(StickyTest::status($resp), 302, "client $client: login redirects");
        my $loc = StickyTest::header($resp, 'Location') // '';
        $page = page_of(next_lb()->get($loc, %h));
        $check->('after login (the regenerated id, learned on the other nginx)', $page);
    }
    is_deeply(\@wrong, [], "client $client stayed on $home while alternating between two nginx");
    is_deeply(\@lost, [], "client $client never lost its session");
    $homes{$home}++;
}
cmp_ok(scalar keys %homes, '>', 1, 'sessions spread over backends');

$_->stop for @lb, $apps;
done_testing;
