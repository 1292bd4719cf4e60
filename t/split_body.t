#!/usr/bin/perl
# Learning from a body that arrives in small pieces: the id link is cut
# across buffers, and still learned before the client can use it.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of);
use IO::Compress::Gzip qw(gzip $GzipError);
use IO::Uncompress::Gunzip ();

my $t = StickyTest->new;
$t->write_config(<<'CONF');
http {
    access_log off;
    upstream app {
        sticky_session name=sid name=PHPSESSID learn=all;
        server 127.0.0.1:%%PORT_PERL%%;
        server 127.0.0.1:%%PORT_B2%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / {
            proxy_pass http://app;
            proxy_buffering off;
            add_header X-Sticky $sticky_session_status always;
        }
    }
    server { listen 127.0.0.1:%%PORT_B2%%; default_type text/html;
             location / { return 200 "backend=b2\n"; } }
}
CONF

my $n = 0;
$t->backend($t->port('PERL'), sub {
    my ($method, $uri) = @_;
    $n++;
    my $page = "backend=perl\n<html><body>\n"
        . "<a href=\"/a?PHPSESSID=split$n-abcdef\">a</a>\n"
        . "<A HREF='/b?x=1&amp;sid=other$n'>b</A>\n"
        . "<a href=\"https://elsewhere.example/c?sid=foreign$n\">c</a>\n"
        . "</body></html>\n";
    my $enc = '';
    if ($uri =~ /^\/gz/) {
        $page .= "<form><input type=hidden name=PHPSESSID value=gzform$n></form>\n";
        gzip(\$page => \my $z) or die $GzipError;
        ($page, $enc) = ($z, "Content-Encoding: gzip\r\n");
    }
    # 7-byte pieces: every id and every attribute is cut somewhere.
    my @pieces = $page =~ /(.{1,7})/gs;
    return ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n${enc}Connection: close\r\n\r\n", \@pieces);
}, pause => 0.005);
$t->run;


# Round robin: the first request goes to the Perl backend, which hands out ids.
my $r = $t->get('/');
is(backend_of($r), 'perl', 'first request reached the piecewise backend');
like(StickyTest::body($r), qr/split1-abcdef/, 'body passed through unchanged');

for my $id ('split1-abcdef', 'other1') {
    my %seen;
    $seen{ backend_of($t->get("/x?sid=$id&PHPSESSID=$id")) }++ for 1 .. 10;
    is_deeply(\%seen, { perl => 10 }, "id $id learned from pieces routes to its server");
}

my %foreign;
$foreign{ backend_of($t->get('/x?sid=foreign1')) }++ for 1 .. 4;
is(scalar keys %foreign, 2, 'ids in links to other hosts are not learned');

# A gzip body in 7-byte pieces: links and a hidden form field, learned
# through the inflater. Reach the Perl backend first (round robin alternates).
my $gz;
for (1 .. 2) {
    $gz = $t->get('/gz');
    last if StickyTest::header($gz, 'Content-Encoding');
}
is(StickyTest::header($gz, 'Content-Encoding'), 'gzip', 'gzip body passed on compressed');
my $plain;
IO::Uncompress::Gunzip::gunzip(\StickyTest::body($gz) => \$plain) or die;
my @ids = ($plain =~ /PHPSESSID=(split\d+-abcdef)/, $plain =~ /value=(gzform\d+)/);
is(scalar @ids, 2, 'the gzip page carries a link id and a form id');
for my $id (@ids) {
    my %seen;
    $seen{ backend_of($t->get("/x?PHPSESSID=$id")) }++ for 1 .. 6;
    is_deeply(\%seen, { perl => 6 }, "id $id learned from a gzip body in pieces");
}

$t->stop;
done_testing;
