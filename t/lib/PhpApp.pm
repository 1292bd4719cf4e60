package PhpApp;
# A tiny application that behaves like PHP with session.use_trans_sid=1, for
# .t suites: ids in <a href>, <area href>, <frame src> (raw `&` after
# `&amp;`, fragments, a second copy), a hidden <input name=PHPSESSID> in a
# form whose action carries no id, a POST login whose only id is in the
# urlencoded body, session regeneration at login answered with a redirect,
# 200 KB pages, gzip for clients that accept it.

use strict;
use warnings;
use Exporter 'import';
use IO::Compress::Gzip qw(gzip $GzipError);
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use StickyTest;

our @EXPORT_OK = qw(app page_of who);

# One backend: a tiny session-keeping app. Sessions live in the backend
# process, so a request that reaches the wrong backend says "unknown".
sub app {
    my ($name) = @_;
    my %sessions;
    my $seq = 0;
    my $new_id = sub { sprintf '%s%08x%04d', $name, int(rand(2**32)), ++$seq };
    return sub {
        my ($method, $uri, $hdr, $body) = @_;
        my ($id) = $uri =~ /[?&]PHPSESSID=([\w,-]+)/;
        ($id) = $body =~ /(?:^|&)PHPSESSID=([\w,-]+)/ if !$id && $method eq 'POST';
        my $known = defined $id && $sessions{$id};
        my $status = '200 OK';
        my $extra = '';
        if ($uri =~ m{^/login\.php} && $method eq 'POST') {
            if ($known) {
                delete $sessions{$id};
                $id = $new_id->();    # session_regenerate_id()
                $sessions{$id} = 1;
                return ("HTTP/1.1 302 Found\r\nLocation: /home.php?PHPSESSID=$id\r\n"
                    . "Content-Length: 0\r\nConnection: close\r\n\r\n", []);
            }
        }
        my $state = $known ? "session=$id" : 'unknown';
        if (!$known) {
            $id = $new_id->();
            $sessions{$id} = 1;
        }
        my $page = "<html><head><title>backend=$name $state</title></head><body>\n"
            . "<p>backend=$name $state</p>\n"
            . "<a href=\"/page.php?x=1&amp;y=2&PHPSESSID=$id#top\">page</a>\n"
            . "<map><area shape=rect coords=0,0,1,1 href='/map.php?PHPSESSID=$id'></map>\n"
            . "<frameset><frame src=/frame.php?PHPSESSID=$id></frameset>\n"
            . "<a HREF=\"/twice.php?PHPSESSID=$id&PHPSESSID=$id\">twice</a>\n"
            . "<form action=\"/login.php\" method=\"post\">"
            . "<input type=\"hidden\" name=\"PHPSESSID\" value=\"$id\" />"
            . "<input name=\"user\"></form>\n";
        # Pad to 200 KB of ordinary markup.
        my $filler = "<div class=\"row\"><span>Lorem ipsum dolor sit amet, consectetur</span></div>\n";
        $page .= $filler x int(200_000 / length $filler);
        $page .= "</body></html>\n";
        my $enc = '';
        if (($hdr->{'accept-encoding'} // '') =~ /gzip/) {
            my $z;
            gzip(\$page => \$z) or die $GzipError;
            $page = $z;
            $enc = "Content-Encoding: gzip\r\n";
        }
        my @pieces = $page =~ /(.{1,8192})/gs;
        return ("HTTP/1.1 $status\r\nContent-Type: text/html; charset=UTF-8\r\n$enc"
            . "Content-Length: " . length($page) . "\r\nConnection: close\r\n\r\n", \@pieces);
    };
}

sub page_of {
    my ($r) = @_;
    my $body = StickyTest::body($r);
    if ((StickyTest::header($r, 'Content-Encoding') // '') eq 'gzip') {
        my $plain;
        gunzip(\$body => \$plain) or die $GunzipError;
        return $plain;
    }
    return $body;
}

sub who { $_[0] =~ /backend=(b\d) (session=\S+|unknown)/ ? ($1, $2) : ('none', 'none') }

1;
