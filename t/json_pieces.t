#!/usr/bin/perl
# JSON in pieces and minified JSON of any size: a member whose name and
# value arrive in different buffers is learned, a minified answer longer
# than a token (2 KB) teaches each of its members (a flat one too: a
# login answer with long tokens), and a foreign URL cut by a bracket
# teaches nothing.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(count_backends);

my $t = StickyTest->new;
$t->write_config(<<'CONF');
http {
    access_log off;
    upstream api {
        sticky_session name=sid zone=api:1m types=application/json learn=all;
        server 127.0.0.1:%%PORT_PERL%%;
        server 127.0.0.1:%%PORT_B2%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / {
            proxy_pass http://api;
            proxy_buffering off;
            add_header X-Sticky $sticky_session_status always;
        }
    }
    server { listen 127.0.0.1:%%PORT_B2%%; location / { return 200 "backend=b2\n"; } }
}
CONF

my $n = 0;
$t->backend($t->port('PERL'), sub {
    my ($method, $uri) = @_;
    $n++;
    my @pieces;
    if ($uri =~ m{^/pieces}) {
        # The buffer ends right after the member's name and a space.
        @pieces = ('{"backend":"backend=perl","data":{"x":1},"sid" ', qq{: "piece$n"}, '}');
    } elsif ($uri =~ m{^/minified(\d*)}) {
        my $size = $1 || 0;
        my $items = join ',', map { qq({"id":$_,"name":"item_$_","tags":["a","b"]}) } 1 .. 120;
        my $body = qq({"backend":"backend=perl","items":[$items],"sid":"mini$n","next":"/more?sid=link$n"});
        @pieces = $size ? ($body =~ /(.{1,$size})/gs) : ($body);
    } elsif ($uri =~ m{^/login(\d*)}) {
        # A flat object: two long tokens, then the session, no bracket
        # or brace between the members.
        my $size = $1 || 0;
        my ($access, $refresh) = ('eyJ' . ('a' x 1500), 'eyJ' . ('r' x 1500));
        my $body = qq({"backend":"backend=perl","access_token":"$access","refresh_token":"$refresh","expires_in":3600,"sid":"login$n"});
        @pieces = $size ? ($body =~ /(.{1,$size})/gs) : ($body);
    } elsif ($uri =~ m{^/foreign}) {
        @pieces = (qq({"backend":"backend=perl","next":"https://other.example/a?x[1]=2&sid=foreign$n"}));
    } else {
        @pieces = ('{"backend":"backend=perl"}');
    }
    return ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n", \@pieces);
}, pause => 0.02);
$t->run;

# The Perl backend must answer (round robin alternates).
sub from_perl { $t->get_from(perl => $_[0]) }

sub sticks {
    my ($id, $what) = @_;
    is_deeply(count_backends(map { $t->get("/x?sid=$id") } 1 .. 6), { perl => 6 }, $what);
}

my ($id) = StickyTest::body(from_perl('/pieces')) =~ /"(piece\d+)"/;
sticks($id, 'a member cut after its name (a buffer ends in white space) is learned');

my $body = StickyTest::body(from_perl('/minified'));
cmp_ok(length $body, '>', 4096, 'the minified answer is longer than two tokens');
unlike($body, qr/\s/, 'and has no white space');
my ($mini, $link) = $body =~ /"sid":"(mini\d+)".*sid=(link\d+)/;
sticks($mini, 'a member of minified JSON over 2 KB is learned');
sticks($link, 'a same-site URL in it too');

my ($mini7) = StickyTest::body(from_perl('/minified97')) =~ /"sid":"(mini\d+)"/;
sticks($mini7, 'the same answer in 97-byte pieces: learned');

$body = StickyTest::body(from_perl('/login'));
my ($members) = $body =~ /^\{(.*)"sid"/;
unlike($members, qr/[\[\]{}\s]/, 'the login answer is flat up to its session id');
cmp_ok(length $members, '>', 3000, 'and longer than a token');
my ($login) = $body =~ /"sid":"(login\d+)"/;
sticks($login, 'a flat minified answer over 2 KB teaches its session id');
my ($login7) = StickyTest::body(from_perl('/login97')) =~ /"sid":"(login\d+)"/;
sticks($login7, 'the same answer in 97-byte pieces: learned');

my ($foreign) = StickyTest::body(from_perl('/foreign')) =~ /sid=(foreign\d+)/;
my $seen = count_backends(map { $t->get("/x?sid=$foreign") } 1 .. 4);
is(scalar keys %$seen, 2, 'a foreign URL cut by a bracket teaches nothing');

$t->stop;
done_testing;
