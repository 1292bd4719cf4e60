#!/usr/bin/perl
# learn=first (the default): a response teaches its first id (headers, then
# body) and the rest of the body is passed on unread; learn=all learns every
# id. Either way the client gets the whole response, unchanged.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest;
use IO::Compress::Gzip qw(gzip $GzipError);
use IO::Uncompress::Gunzip ();

my $t = StickyTest->new;
$t->write_config(<<'CONF');
http {
    access_log off;
    upstream first {
        sticky_session name=sid zone=first:64k;
        server 127.0.0.1:%%PORT_PERL%%;
        server 127.0.0.1:%%PORT_B2%%;
    }
    upstream all {
        sticky_session name=sid zone=all:64k learn=all;
        server 127.0.0.1:%%PORT_PERL%%;
        server 127.0.0.1:%%PORT_B2%%;
    }
    upstream more {
        sticky_session name=sid zone=more:64k learn=all max_learn=150;
        server 127.0.0.1:%%PORT_PERL%%;
        server 127.0.0.1:%%PORT_B2%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location /more/ { proxy_pass http://more/; add_header X-Sticky $sticky_session_status always; }
        location / { proxy_pass http://first; add_header X-Sticky $sticky_session_status always; }
        location /all/ { proxy_pass http://all/; add_header X-Sticky $sticky_session_status always; }
        location = /status { sticky_session_status; }
    }
    server { listen 127.0.0.1:%%PORT_B2%%; default_type text/html;
             location / { return 200 "backend=b2\n"; } }
}
CONF

# Every page carries two ids, A then B, a filler between them so that they
# arrive in different buffers. Ids are numbered by response.
my $n = 0;
my $filler = ('<p>' . ('lorem ipsum dolor sit amet ' x 20) . "</p>\n") x 200;    # ~110 KB
$t->backend($t->port('PERL'), sub {
    my ($method, $uri) = @_;
    $n++;
    my ($head, $body) = ('', "backend=perl\n");
    if ($uri =~ m{^/many}) {
        # A page reflecting content: 200 distinct same-site ids.
        $body .= join '', map { "<a href=\"/m?sid=M${n}x$_\">m</a>\n" } 1 .. 200;
    } elsif ($uri =~ m{^/setcookies}) {
        # As many ids in headers: 40 Set-Cookie lines.
        $head = join '', map { "Set-Cookie: sid=H${n}x$_; Path=/\r\n" } 1 .. 40;
    } elsif ($uri =~ m{^/cookie}) {
        # Set-Cookie teaches C; the body's D is not read.
        $head = "Set-Cookie: sid=C$n; Path=/\r\n";
        $body .= "<a href=\"/d?sid=D$n\">d</a>\n";
    } elsif ($uri =~ m{[?&]sid=(\w+)}) {
        # The client's own id comes first on the page, then a new one.
        $body .= "<a href=\"/a?sid=$1\">a</a>\n$filler<a href=\"/b?sid=B$n\">b</a>\n";
    } else {
        # Links to other hosts teach nothing and do not end the scan.
        $body .= "<a href=\"https://elsewhere.example/?sid=F$n\">f</a>\n$filler"
            . "<a href=\"/a?sid=A$n\">a</a>\n$filler<a href=\"/b?sid=B$n\">b</a>\n";
    }
    my $enc = '';
    if ($uri =~ m{/gz}) {
        gzip(\$body => \my $z) or die $GzipError;
        ($body, $enc) = ($z, "Content-Encoding: gzip\r\n");
    }
    # With a length, the body's end is its last byte (no separate last buffer).
    my @pieces = $body =~ /(.{1,1500})/gs;
    my $len = "Content-Length: " . length($body) . "\r\n";
    return ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n$head$enc${len}Connection: close\r\n\r\n", \@pieces);
}, pause => 0.002);
$t->run;

# The (decompressed) body, and which backend sent it.
sub plain {
    my ($r) = @_;
    my $body = StickyTest::body($r);
    if ((StickyTest::header($r, 'Content-Encoding') // '') eq 'gzip') {
        IO::Uncompress::Gunzip::gunzip(\(my $z = $body) => \$body) or die "gunzip failed";
    }
    return $body;
}
sub backend_of { plain($_[0]) =~ /backend=(\w+)/ ? $1 : 'none' }
sub status { StickyTest::header($t->get($_[0]), 'X-Sticky') // 'none' }

# Round robin alternates: ask until the Perl backend answers.
sub page {
    my ($uri) = @_;
    for (1 .. 2) {
        my $r = $t->get($uri);
        return $r if backend_of($r) eq 'perl';
    }
    die "the Perl backend never answered $uri\n";
}

sub routes {
    my ($prefix, $id) = @_;
    my %seen;
    $seen{ backend_of($t->get("${prefix}x?sid=$id")) }++ for 1 .. 4;
    return $seen{perl} // 0;
}

for my $gz ('', 'gz') {
    my $what = $gz ? 'gzip page' : 'page';
    my $r = page("/$gz");
    is(StickyTest::header($r, 'Content-Encoding'), $gz ? 'gzip' : undef, "$what: encoding kept");
    my $body = plain($r);
    my ($a, $b) = $body =~ /sid=(A\d+).*sid=(B\d+)/s or die "no ids in the $what";
    ok(length($body) > 200_000 && $body =~ /\Q$filler\E/, "$what passed on whole");
    is(routes('/', $a), 4, "learn=first: first id of the $what is learned");
    is(status("/x?sid=$b"), 'MISS', "learn=first: the rest of the $what is not read");

    $body = plain(page("/all/$gz"));
    ($a, $b) = $body =~ /sid=(A\d+).*sid=(B\d+)/s or die "no ids in the $what";
    is(routes('/all/', $a) + routes('/all/', $b), 8, "learn=all: both ids of the $what learned");
}

# A request whose session is live: its own id, first on the page, is the
# response's id (nothing to write, the lookup refreshed it); with learn=all
# the new id after it is learned too.
{
    my $r = page('/');
    my ($own) = plain($r) =~ /sid=(A\d+)/;
    my ($next) = plain(page("/p?sid=$own")) =~ /sid=(B\d+)/;
    is(status("/x?sid=$own"), 'HIT', 'the session is live');
    is(status("/x?sid=$next"), 'MISS', 'learn=first: a page led by the request\'s own id teaches nothing else');
    ($own) = plain(page('/all/')) =~ /sid=(A\d+)/;
    ($next) = plain(page("/all/p?sid=$own")) =~ /sid=(B\d+)/;
    is(routes('/all/', $next), 4, 'learn=all: the new id after the own id is learned');
}

# learn=all records at most 32 ids of one response (a page reflecting
# user content may carry thousands, each a table write); the rest of the
# page is passed on unread.
{
    my $counter = sub {
        my ($name) = @_;
        StickyTest::body($t->get('/status')) =~ /"all":\{[^}]*"$name":(\d+)/ ? $1 : -1;
    };
    my $limited = sub { $counter->('learn_limited') };
    is($limited->(), 0, 'no scan stopped yet');
    my $body = plain(page('/all/many'));
    my @ids = $body =~ /sid=(M\d+x\d+)/g;
    is(scalar @ids, 200, 'the page with 200 ids is passed on whole');
    is(status("/all/x?sid=$ids[0]") . ' ' . status("/all/x?sid=$ids[31]"), 'HIT HIT',
        'learn=all: the first 32 ids are learned');
    is(status("/all/x?sid=$ids[32]") . ' ' . status("/all/x?sid=$ids[199]"), 'MISS MISS',
        'learn=all: the ids after them are not');
    is($limited->(), 1, 'the stopped scan is counted as learn_limited');
    # The share counts ids from headers too.
    my @cookies = page('/all/setcookies') =~ /^Set-Cookie: sid=(H\d+x\d+)/mg;
    is(scalar @cookies, 40, 'the response with 40 Set-Cookie ids is passed on whole');
    is(status("/all/x?sid=$cookies[31]") . ' ' . status("/all/x?sid=$cookies[32]"), 'HIT MISS',
        'learn=all: the first 32 ids of the headers are learned, not the 33rd');
    is($limited->(), 2, 'and it is counted as learn_limited');
    is($counter->('scan_limited'), 0, 'not as scan_limited (max_scan= was not reached)');
}

# max_learn= raises (or lowers) the share.
{
    my @ids = plain(page('/more/many')) =~ /sid=(M\d+x\d+)/g;
    is(scalar @ids, 200, 'max_learn=150: the page is passed on whole');
    is(status("/more/x?sid=$ids[32]") . ' ' . status("/more/x?sid=$ids[149]"), 'HIT HIT',
        'max_learn=150: the first 150 ids are learned');
    is(status("/more/x?sid=$ids[150]") . ' ' . status("/more/x?sid=$ids[199]"), 'MISS MISS',
        'max_learn=150: the ids after them are not');
}

# Headers come first: a Set-Cookie id is the response's id.
my $r = page('/cookie');
my ($c) = (StickyTest::header($r, 'Set-Cookie') // '') =~ /sid=(C\d+)/;
my ($d) = StickyTest::body($r) =~ /sid=(D\d+)/;
ok($c && $d, 'the response carries a cookie id and a body id');
is(routes('/', $c), 4, 'the Set-Cookie id is learned');
is(status("/x?sid=$d"), 'MISS', 'the body after a Set-Cookie id is not read');

# A client-chosen id the table does not know, echoed first on the page, is
# neither learned nor the end of the scan: the page's own new id is.
$r = page('/p?sid=bogus1');
my ($new) = StickyTest::body($r) =~ /sid=(B\d+)/;
is(status('/x?sid=bogus1'), 'MISS', 'an echoed unknown client id is not learned');
is(routes('/', $new), 4, 'the scan went on past the echoed id and learned the new one');

$t->stop;
done_testing;
