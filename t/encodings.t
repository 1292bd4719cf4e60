#!/usr/bin/perl
# Bodies compressed with brotli (br) and zstd are decoded for scanning, like
# gzip, and passed on untouched: links and form fields teach their ids even
# when the body arrives in 7-byte pieces. A decompression bomb, a zstd window
# over 8 MB and an unknown encoding are not scanned and counted, the
# response still served whole.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of);

for my $tool (qw(brotli zstd)) {
    plan skip_all => "$tool not installed (make test installs it)"
        unless grep { -x "$_/$tool" } split /:/, $ENV{PATH};
}

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
        location = /status { sticky_session_status; }
    }
    server { listen 127.0.0.1:%%PORT_B2%%; default_type text/html;
             location / { return 200 "backend=b2\n"; } }
}
CONF

my $dir = $t->dir;
# Runs a compressor over $data; answers the compressed bytes.
sub squeeze {
    my ($data, @cmd) = @_;
    my $in = "$dir/squeeze.in";
    open my $fh, '>', $in or die $!;
    binmode $fh;
    print $fh $data;
    close $fh;
    my $out = `@cmd < '$in'`;
    die "@cmd failed" if $?;
    return $out;
}

# A zstd frame with a 2^$log window whose RLE blocks expand to $blocks x 128 KB.
sub zstd_rle {
    my ($log, $blocks) = @_;
    my $f = pack('V', 0xFD2FB528) . chr(0) . chr(($log - 10) << 3);
    for my $i (1 .. $blocks) {
        my $h = ($i == $blocks ? 1 : 0) | 1 << 1 | (128 * 1024) << 3;
        $f .= substr(pack('V', $h), 0, 3) . 'x';
    }
    return $f;
}

my $n = 0;
$t->backend($t->port('PERL'), sub {
    my ($method, $uri) = @_;
    $n++;
    my $page = "backend=perl\n<html><body>\n"
        . "<a href=\"/a?sid=link$n-abcdef\">a</a>\n"
        . "<form><input type=hidden name=PHPSESSID value=form$n-abcdef></form>\n"
        . ('<p>filler text between the ids</p>' x 50)
        . "</body></html>\n";
    my ($body, $enc) = ($page, '');
    if ($uri =~ m{^/br}) {
        ($body, $enc) = (squeeze($page, 'brotli', '-c', '-q', '5', '-w', '22'), 'br');
    } elsif ($uri =~ m{^/zstd}) {
        ($body, $enc) = (squeeze($page, 'zstd', '-c', '-q', '-3'), 'zstd');
    } elsif ($uri =~ m{^/bomb-br}) {
        ($body, $enc) = (squeeze("\0" x (20 << 20), 'brotli', '-c', '-q', '1', '-w', '24'), 'br');
    } elsif ($uri =~ m{^/bomb-zstd}) {
        ($body, $enc) = (zstd_rle(23, 1000), 'zstd');
    } elsif ($uri =~ m{^/wide-zstd}) {
        ($body, $enc) = (zstd_rle(30, 2), 'zstd');
    } elsif ($uri =~ m{^/compress}) {
        $enc = 'compress';
    }
    # Compressed pages in 7-byte pieces: every id is cut somewhere.
    my $pieces = $uri =~ m{^/(br|zstd)} ? [$body =~ /(.{1,7})/gs] : [$body];
    return ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
        . ($enc ? "Content-Encoding: $enc\r\n" : '') . "Connection: close\r\n\r\n", $pieces);
}, pause => 0.002);
$t->run;

# A response from the Perl backend (round robin alternates).
sub from_perl {
    my ($uri) = @_;
    for (1 .. 2) {
        my $r = $t->get($uri);
        return $r if StickyTest::header($r, 'Content-Encoding') || backend_of($r) eq 'perl';
    }
    die "the Perl backend did not answer $uri";
}

sub counter {
    my ($name) = @_;
    my ($z) = StickyTest::body($t->get('/status')) =~ /"$name":(\d+)/;
    return $z;
}

for my $case (['br', 'brotli', '-d'], ['zstd', 'zstd', '-d', '-q']) {
    my ($enc, @decoder) = @$case;
    my $r = from_perl("/$enc");
    is(StickyTest::header($r, 'Content-Encoding'), $enc, "$enc body passed on compressed");
    my $plain = squeeze(StickyTest::body($r), @decoder, '-c');
    my ($link) = $plain =~ /sid=(link\d+-abcdef)/;
    my ($form) = $plain =~ /value=(form\d+-abcdef)/;
    ok($link && $form, "the $enc page carries a link id and a form id");
    for my $id ($link, $form) {
        my %seen;
        $seen{ backend_of($t->get("/x?sid=$id&PHPSESSID=$id")) }++ for 1 .. 6;
        is_deeply(\%seen, { perl => 6 }, "$id learned from a $enc body in 7-byte pieces");
    }
}

# Bombs stop at max_scan= (1m: 1 MB decoded); what cannot be decoded is unscanned.
for my $case (['/bomb-br', 'scan_limited'], ['/bomb-zstd', 'scan_limited'],
    ['/wide-zstd', 'unscanned'], ['/compress', 'unscanned']) {
    my ($uri, $counter) = @$case;
    my $before = counter($counter);
    my $r = from_perl($uri);
    is(StickyTest::status($r), 200, "$uri served");
    ok(length(StickyTest::body($r)) > 0, "$uri passed on whole");
    is(counter($counter), $before + 1, "$uri counted as $counter");
}
my $r = $t->get('/status');
is(StickyTest::status($r), 200, 'workers alive after the bombs');

$t->stop;
done_testing;
