#!/usr/bin/perl
# Hostile and broken input. Each request goes through a sticky_session
# upstream and through a plain round robin one with the same backend: the
# status and body must be the same, nothing wrong may be learned, and no
# worker may crash (the harness fails the suite on any alert).

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Compress::Gzip qw(gzip);
use StickyTest;

my $t = StickyTest->new;
$t->write_config(<<'CONF');
http {
    access_log off;
    large_client_header_buffers 4 2m;
    upstream sticky {
        sticky_session name=sid zone=hostile:1m types=*;
        server 127.0.0.1:%%PORT_PERL%%;
    }
    upstream plain {
        server 127.0.0.1:%%PORT_PERL%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location /s/ { proxy_pass http://sticky/; }
        location /p/ { proxy_pass http://plain/; }
        location = /status { sticky_session_status; }
    }
}
CONF

# Bodies the backend can send, by name; each is sent in tiny pieces when the
# name ends in "-split" (a `<` at every buffer edge).
my %bodies = (
    'unterminated' => qq{<a href="/n?sid=u1 <a href='/m?sid=u2\n<input name="sid" value="u3},
    'comment'      => qq{<!-- <a href="/n?sid=c1"> --><!-- unterminated <a href="/n?sid=c2">},
    'garbage'      => join('', map { chr(($_ * 7919) % 256) } 1 .. 20_000),
    'midtag'       => qq{<p>ok</p><a href="/n?sid=},
    'angles'       => ('<' x 3000) . q{<a href="/n?sid=ok1">} . ('>' x 3000),
    'nul'          => qq{<a href="/n?sid=n\0ul"><a href="/n?sid=ok2\x01">},
);
$t->backend($t->port('PERL'), sub {
    my ($m, $uri) = @_;
    my ($name) = $uri =~ m{^/body/([\w-]+)};
    $name //= 'plain';
    (my $base = $name) =~ s/-split$//;
    if ($base eq 'badgzip' || $base eq 'truncgzip') {
        # Fixed MTIME: both requests of a comparison must get the same bytes.
        gzip(\(q{<a href="/n?sid=gz1">} x 200) => \my $z, Time => 0);
        $z = $base eq 'badgzip' ? substr($z, 0, 30) . ('X' x 40) . substr($z, 70) : substr($z, 0, length($z) / 2);
        return ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
            . "Content-Length: " . length($z) . "\r\nConnection: close\r\n\r\n", [$z]);
    }
    if ($base eq 'short') {
        # Promises more than it sends, then closes mid-body.
        return ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n"
            . "Connection: close\r\n\r\n", [q{<a href="/n?sid=sh1">}]);
    }
    my $body = $bodies{$base} // "plain\n";
    # Bodies up to 8 KB go byte by byte; the 20 KB one in 3-byte pieces, so it
    # stays quick on a debug-built nginx under load.
    my $step = 1 + int(length($body) / 8000);
    my @pieces = $name =~ /-split$/ ? ($body =~ /(.{1,$step})/gs) : ($body);
    return ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: " . length($body)
        . "\r\nConnection: close\r\n\r\n", \@pieces);
}, pause => 0);
$t->run;

sub entries { StickyTest::body($t->get('/status')) =~ /"entries":(\d+)/ ? $1 : -1 }

sub same {
    my ($what, $path, %opt) = @_;
    my $send = $opt{raw} // sub { $t->get($_[0], %opt) };
    my $s = $send->("/s$path");
    my $p = $send->("/p$path");
    is(StickyTest::status($s), StickyTest::status($p), "$what: same status as without the module");
    is(StickyTest::body($s), StickyTest::body($p), "$what: same body as without the module")
        unless $opt{status_only};
}

# Requests.
my $before = entries();
same('over-long id', '/x?sid=' . ('a' x 5000));
same('invalid percent-encoding', '/x?sid=%zz%%%G1&sid=%');
same('control bytes', "/x?sid=a%00b%01c\x7f");
same('10,000 query parameters', '/x?' . join('&', map { "p$_=$_" } 1 .. 10_000) . '&sid=q1');
same('10,000 sid parameters', '/x?' . join('&', map { "sid=r$_" } 1 .. 10_000));
same('megabyte cookie', '/x', headers => { Cookie => 'sid=' . ('c' x (1 << 20)) });
same('many cookies', '/x', headers => { Cookie => join('; ', map { "sid=k$_" } 1 .. 5000) });
same('NUL in the request line', '/x', status_only => 1,
    raw => sub { $t->http("GET $_[0]?sid=a\0b HTTP/1.0\r\nHost: localhost\r\n\r\n") });
same('urlencoded body of garbage', '/x', raw => sub {
    $t->post($_[0], join('', map { chr(($_ * 31) % 256) } 1 .. 50_000) . '&sid=&sid==&&');
});
is(entries(), $before, 'no hostile request grew the table');

# Responses.
for my $name (qw(unterminated comment garbage midtag angles nul)) {
    same("body $name", "/body/$name");
    same("body $name in tiny pieces", "/body/$name-split", timeout => 60);
}
same('corrupt gzip body', '/body/badgzip');
same('truncated gzip body', '/body/truncgzip');
same('upstream closing mid-body', '/body/short', status_only => 1);

# What was learned: a complete link amid broken markup is; a form field
# whose tag never closes, and a link cut by the end of the body, are not.
sub hits { StickyTest::body($t->get('/status')) =~ /"hits":(\d+)/ ? $1 : 0 }
sub known {
    my $h0 = hits();
    $t->get("/s/n?sid=$_[0]");
    return hits() - $h0;
}
ok(known('ok1'), 'a complete link between thousands of < and > is learned');
ok(!known('u3'), 'a form field in a tag that never closes is not learned');
is(entries() > 0, 1, 'the table holds what was learned');

$t->stop;
like($t->error_log, qr/upstream prematurely closed/, 'the short upstream body was noticed by nginx, not us');
unlike($t->error_log, qr/exited on signal/, 'no worker died');
done_testing;
