#!/usr/bin/perl
# Every place a request's id is read from (query with duplicates, cookie,
# variable, urlencoded body in memory and in a temp file, bounded) and the
# response places beyond links (Set-Cookie, event streams), plus bodies the
# scanner must leave alone (unknown or corrupt encodings).

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of sticky_of);

my $t = StickyTest->new;
$t->write_config(<<'CONF');
http {
    access_log off;
    client_body_buffer_size 1k;
    client_body_temp_path %%TESTDIR%%/body;
    upstream app {
        sticky_session name=SID;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
    }
    upstream byvar {
        sticky_session name=SID zone=byvar:1m lookup=$sid_in_path;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
    }
    upstream events {
        sticky_session name=sessionId zone=events:1m types=text/event-stream;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
    }
    map $uri $sid_in_path { ~^/s/(?<s>[^/]+)/ $s; default ""; }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        add_header X-Sticky $sticky_session_status always;
        location / { proxy_pass http://app; }
        location /s/ { proxy_pass http://byvar; }
        location /sse { proxy_pass http://events; }
        location /stream/ { proxy_pass http://app; proxy_request_buffering off; }
    }
}
CONF

sub app {
    my ($name) = @_;
    return sub {
        my ($method, $uri, $hdr, $body) = @_;
        my ($new) = $uri =~ /[?&]new=([^&]+)/;
        $new //= '';
        my $len = length $body;
        my ($ct, $extra, $page) = ('text/html', '', "backend=$name len=$len\n");
        if ($uri =~ m{/issue}) {
            $extra = "Set-Cookie: SID=$new; Path=/; HttpOnly\r\n";
        } elsif ($uri =~ m{/delete}) {
            $extra = "Set-Cookie: SID=$new; expires=Thu, 01-Jan-1970 00:00:01 GMT; Max-Age=0\r\n";
        } elsif ($uri =~ m{^/sse}) {
            $ct = 'text/event-stream';
            $page .= "event: endpoint\ndata: /sse/messages?sessionId=$new\n\n";
        } elsif ($uri =~ m{/brotli}) {
            $extra = "Content-Encoding: br\r\n";
            $page .= "<a href=\"/n?SID=$new\">x</a>\n";
        } elsif ($uri =~ m{/badgzip}) {
            $extra = "Content-Encoding: gzip\r\n";
            $page .= "\x1f\x8b\x08\x00garbage<a href=\"/n?SID=$new\">x</a>\n";
        }
        return ("HTTP/1.1 200 OK\r\nContent-Type: $ct\r\n$extra"
            . "Content-Length: " . length($page) . "\r\nConnection: close\r\n\r\n", [$page]);
    };
}
$t->backend($t->port("B$_"), app("b$_"), pause => 0) for 1 .. 2;
$t->run;


# Sends $n requests made by $req; returns { backend => count } and { status => count }.
sub spread {
    my ($n, $req) = @_;
    my (%b, %s);
    for (1 .. $n) { my $r = $req->(); $b{ backend_of($r) }++; $s{ sticky_of($r) }++ }
    return (\%b, \%s);
}

# Set-Cookie hands out an id; the Cookie header brings it back.
my $r = $t->get('/issue?new=ck1');
my $home = backend_of($r);
is(sticky_of($r), 'NEW', 'Set-Cookie: id learned from the response header');
my ($b, $s) = spread(6, sub { $t->get('/page', headers => { Cookie => 'theme=dark; SID=ck1' }) });
is_deeply([$b, $s], [{ $home => 6 }, { HIT => 6 }], 'Cookie: id read from the request cookie');

$r = $t->get('/delete?new=gone1');
is(sticky_of($r), 'NONE', 'a deleting Set-Cookie teaches nothing');
($b, $s) = spread(2, sub { $t->get('/page', headers => { Cookie => 'SID=gone1' }) });
is_deeply($s, { MISS => 2 }, 'the deleted id stays unknown');

# Duplicate names: the known value wins wherever it is.
($b, $s) = spread(6, sub { $t->get('/page?SID=unknown9&SID=ck1') });
is_deeply([$b, $s], [{ $home => 6 }, { HIT => 6 }], 'query: a known duplicate wins over an unknown first one');
($b, $s) = spread(4, sub { $t->get('/page?SID=unknown9', headers => { Cookie => 'SID=ck1' }) });
is_deeply([$b, $s], [{ $home => 4 }, { HIT => 4 }], 'a known cookie wins over an unknown query id');

# Urlencoded POST bodies: in memory, in a temp file, beyond the scan limit.
($b, $s) = spread(4, sub { $t->post('/login', 'user=a&SID=ck1&pw=x') });
is_deeply([$b, $s], [{ $home => 4 }, { HIT => 4 }], 'body: id read from a small form body');
my $big = 'pad=' . ('x' x 20_000) . '&SID=ck1&tail=1';
($b, $s) = spread(4, sub { $t->post('/login', $big) });
is_deeply([$b, $s], [{ $home => 4 }, { HIT => 4 }], 'body: id read from a body buffered to a temp file');
$r = $t->post('/login', $big);
like(StickyTest::body($r), qr/len=${\ length $big}/, 'the body still reaches the backend whole');
my $far = 'pad=' . ('x' x 70_000) . '&SID=ck1';
$r = $t->post('/login', $far);
is(sticky_of($r), 'NONE', 'body: an id beyond the first 64 KB is not searched for');
$r = $t->post('/login', 'SID=ck1', type => 'multipart/form-data; boundary=x');
is(sticky_of($r), 'NONE', 'body: only urlencoded forms are read');
# Unbuffered: the balancer runs before the body has arrived, so it is not
# read (a body that came whole with the headers counts as buffered: nginx
# then clears request_body_no_buffering itself).
my $late = 'pad=' . ('y' x 20_000) . '&SID=ck1';
$r = $t->post('/stream/login', $late);
is(sticky_of($r), 'NONE', 'body: not read while nginx streams it unbuffered');
like(StickyTest::body($r), qr/len=${\ length $late}/, 'an unbuffered body is proxied untouched');

# A variable: an id in a path segment, through map.
$r = $t->get('/s/issue?new=pv1');
my $vhome = backend_of($r);
($b, $s) = spread(6, sub { $t->get('/s/pv1/page') });
is_deeply([$b, $s], [{ $vhome => 6 }, { HIT => 6 }], 'lookup=$var: id read from a variable');
$r = $t->get('/s/page?SID=pv1');
is(sticky_of($r), 'NONE', 'lookup=$var alone ignores the query');

# Limits: ids over max_id_len are ignored on both sides.
my $long = 'L' x 129;
$r = $t->get("/issue?new=$long");
is(sticky_of($r), 'NONE', 'an over-long id is not learned');
$r = $t->get("/page?SID=$long");
is(sticky_of($r), 'NONE', 'an over-long id in a request is ignored');

# An event stream announcing its endpoint with the session id (MCP style).
$r = $t->get('/sse?new=ev1');
my $ehome = backend_of($r);
like(StickyTest::body($r), qr/sessionId=ev1/, 'event stream passed through');
($b, $s) = spread(6, sub { $t->get('/sse/messages?sessionId=ev1') });
is_deeply([$b, $s], [{ $ehome => 6 }, { HIT => 6 }], 'types=text/event-stream: id learned from the stream');

# Bodies the scanner cannot read are passed on untouched, and teach nothing.
$r = $t->get('/brotli?new=br1');
like(StickyTest::body($r), qr/SID=br1/, 'unknown encoding: body untouched');
is(StickyTest::header($r, 'Content-Encoding'), 'br', 'unknown encoding: header untouched');
$r = $t->get('/badgzip?new=gz1');
is(StickyTest::status($r), 200, 'corrupt gzip: served');
like(StickyTest::body($r), qr/garbage<a href="\/n\?SID=gz1">/, 'corrupt gzip: body untouched');
($b, $s) = spread(2, sub { $t->get('/n?SID=br1') });
is_deeply($s, { MISS => 2 }, 'nothing learned from an unknown encoding');
($b, $s) = spread(2, sub { $t->get('/n?SID=gz1') });
is_deeply($s, { MISS => 2 }, 'nothing learned from a corrupt gzip body');

$t->stop;
done_testing;
