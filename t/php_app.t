#!/usr/bin/perl
# A cookie-less client of an application that behaves like PHP with
# session.use_trans_sid=1: ids in <a href>, <area href>, <frame src> (raw `&`
# after `&amp;`, fragments, a second copy), hidden <input name=PHPSESSID> in
# forms whose action carries no id, a POST login whose only id is in the
# urlencoded body, session regeneration at login answered with a redirect,
# 200 KB pages, gzip for clients that accept it. Four workers.
# Every step must reach the backend that holds the session.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest;
use PhpApp qw(app page_of who);

my $t = StickyTest->new;
$t->write_config(<<'CONF');
worker_processes 4;
http {
    access_log off;
    upstream php {
        sticky_session name=PHPSESSID zone=php:1m;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
        server 127.0.0.1:%%PORT_B3%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%% reuseport;
        location / {
            proxy_pass http://php;
            add_header X-Sticky $sticky_session_status always;
        }
    }
}
CONF

$t->backend($t->port("B$_"), app("b$_"), pause => 0.0005) for 1 .. 3;
$t->run;


my (%homes, %gzip_seen);
for my $client (1 .. 6) {
    my %h = $client % 2 ? () : (headers => { 'Accept-Encoding' => 'gzip' });
    my $r = $t->get('/', %h);
    $gzip_seen{ StickyTest::header($r, 'Content-Encoding') // 'identity' }++;
    my $page = page_of($r);
    my ($home) = who($page);
    my (@wrong, @lost);
    my $check = sub {
        my ($what, $page) = @_;
        my ($b, $state) = who($page);
        push @wrong, "$what on $b" if $b ne $home;
        push @lost, $what if $state eq 'unknown';
    };
    for my $step (1 .. 6) {
        # Follow each kind of link PHP rewrote.
        for my $re (qr/<a href="([^"]+)"/, qr/href='([^']+)'/, qr/<frame src=([^>\s]+)>/, qr/<a HREF="([^"]+)"/) {
            my ($link) = $page =~ $re or do { push @lost, "no link $re"; next };
            $link =~ s/&amp;/&/g;
            $link =~ s/#.*//;
            my $resp = $t->get($link, %h);
            $page = page_of($resp);
            $check->("step $step $link (" . (StickyTest::header($resp, 'X-Sticky') // '') . ")", $page);
        }
        next unless $step == 3;
        # Log in: the form's action has no id; the hidden field is the only copy.
        my ($sid) = $page =~ /name="PHPSESSID" value="([^"]+)"/;
        my $resp = $t->post('/login.php', "PHPSESSID=$sid&user=alice", %h);
        is(StickyTest::status($resp), 302, "client $client: login redirects");
        my $loc = StickyTest::header($resp, 'Location') // '';
        isnt($loc =~ /PHPSESSID=([^&]+)/ ? $1 : $sid, $sid, "client $client: login regenerated the id");
        $page = page_of($t->get($loc, %h));
        $check->('after login', $page);
        like($page, qr/session=\Q@{[ $loc =~ m{PHPSESSID=(\S+)} ]}\E/,
            "client $client: the regenerated id is the session now");
    }
    is_deeply(\@wrong, [], "client $client stayed on $home through links, form POST and redirect");
    is_deeply(\@lost, [], "client $client never lost its session");
    $homes{$home}++;
}
cmp_ok(scalar keys %homes, '>', 1, 'sessions spread over backends');
is($gzip_seen{gzip}, 3, 'gzip clients received gzip bodies');

$t->stop;
done_testing;
