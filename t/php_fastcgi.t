#!/usr/bin/perl
# Real PHP behind fastcgi_pass, as PHP is usually deployed: three php-cgi
# FastCGI servers, each with its own session directory (a request that
# reaches the wrong one finds no session: strict mode hands out a new id and
# the visit counter starts again). Cookie-less clients: PHP's trans-sid puts
# the id in every link and a hidden form field; logging in is a POST whose
# only id is that field, and regenerates the id. Half the clients take gzip
# (zlib.output_compression). Every step must reach the pool that holds the
# session, and the session must go on counting.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest;
use PhpApp qw(page_of);

my $php = (grep { -x } map { "$_/php-cgi" } split /:/, $ENV{PATH})[0]
    or BAIL_OUT('php-cgi is missing: `make deps` installs it');

my $t = StickyTest->new;
my $www = $t->dir . '/www';
mkdir $www;
open my $fh, '>', "$www/app.php" or die $!;
print $fh <<'PHP';
<?php
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    session_regenerate_id(true);
    $_SESSION['user'] = $_POST['user'] ?? '';
}
echo "<!doctype html><html><body>\n";
echo "<p>pool=", basename(ini_get('session.save_path')), " n=", $_SESSION['n'],
     " user=", $_SESSION['user'] ?? '-', "</p>\n";
echo str_repeat("<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>\n", 200);
echo "<a href=\"/app.php?step=", $_SESSION['n'], "\">next</a>\n";
echo "<form method=\"post\" action=\"/app.php\"><input type=\"text\" name=\"user\" value=\"ann\"></form>\n";
echo "</body></html>\n";
PHP
close $fh;

$t->write_config(<<'CONF');
http {
    access_log off;
    upstream php {
        sticky_session name=PHPSESSID zone=php:1m;
        server 127.0.0.1:%%PORT_F1%%;
        server 127.0.0.1:%%PORT_F2%%;
        server 127.0.0.1:%%PORT_F3%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        root %%TESTDIR%%/www;
        location ~ \.php$ {
            include fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass php;
            add_header X-Sticky $sticky_session_status always;
        }
    }
}
CONF
$t->write_fastcgi_params;

for my $pool (1 .. 3) {
    my $dir = $t->dir . "/pool$pool";
    mkdir $dir;
    my $port = $t->port("F$pool");
    $t->spawn("php$pool", [$php, '-n', '-b', "127.0.0.1:$port",
        '-d', "session.save_path=$dir",
        '-d', 'session.use_cookies=0', '-d', 'session.use_only_cookies=0',
        '-d', 'session.use_trans_sid=1', '-d', 'session.use_strict_mode=1',
        '-d', 'zlib.output_compression=1', '-d', 'cgi.force_redirect=0'],
        env => { PHP_FCGI_CHILDREN => 0, PHP_FCGI_MAX_REQUESTS => 0 }, port => $port);
}
$t->run;

sub state_of { $_[0] =~ /pool=(pool\d) n=(\d+) user=(\S+)</ ? ($1, $2, $3) : ('none', 0, 'none') }
sub link_of { $_[0] =~ /<a href="([^"]+)"/ ? $1 =~ s/&amp;/&/gr : '' }

my (%homes, %gzip_seen);
for my $client (1 .. 6) {
    my %h = $client % 2 ? () : (headers => { 'Accept-Encoding' => 'gzip' });
    my $r = $t->get('/app.php', %h);
    $gzip_seen{ StickyTest::header($r, 'Content-Encoding') // 'identity' }++;
    my $page = page_of($r);
    my ($home, $n) = state_of($page);
    my @wrong;
    my $expect = sub {
        my ($what, $resp, $user) = @_;
        my ($pool, $got, $u) = state_of(page_of($resp));
        $n++;
        push @wrong, "$what: $pool n=$got user=$u (" . StickyTest::sticky_of($resp) . ")"
            if $pool ne $home || $got != $n || $u ne $user;
        return page_of($resp);
    };
    for my $step (1 .. 4) {
        my $link = link_of($page);
        $page = $expect->("link $step", $t->get($link, %h), '-');
    }
    # Log in: the form's action has no id; the hidden field is the only copy.
    my ($old) = $page =~ /name="PHPSESSID" value="([^"]+)"/;
    my $resp = $t->post('/app.php', "PHPSESSID=$old&user=ann", %h);
    is(StickyTest::sticky_of($resp), 'HIT', "client $client: the POST's id (form body only) is found");
    $page = $expect->('login', $resp, 'ann');
    my ($new) = link_of($page) =~ /PHPSESSID=(\w+)/;
    ok($new && $new ne $old, "client $client: logging in regenerated the id");
    for my $step (1 .. 3) {
        $page = $expect->("after login $step", $t->get(link_of($page), %h), 'ann');
    }
    is_deeply(\@wrong, [], "client $client stayed on $home with its session through links, login and the new id");
    $homes{$home}++;
}
cmp_ok(scalar keys %homes, '>', 1, 'sessions spread over the PHP pools');
is($gzip_seen{gzip}, 3, 'gzip clients received gzip bodies from PHP');

$t->stop;
done_testing;
