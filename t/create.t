#!/usr/bin/perl
# create=$variable (as nginx's own `sticky learn` spells it): an id handed
# out in any response header, here an MCP server's Mcp-Session-Id, read back
# from the request header on every later request (lookup=$http_...). A
# client-chosen id that the server merely echoes is never recorded.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of count_backends sticky_of);

my $t = StickyTest->new;
$t->write_config(<<'CONF');
http {
    access_log off;
    upstream mcp {
        sticky_session zone=mcp:1m create=$upstream_http_mcp_session_id
                       lookup=$http_mcp_session_id;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
        server 127.0.0.1:%%PORT_B3%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / {
            proxy_pass http://mcp;
            add_header X-Sticky $sticky_session_status always;
        }
    }
    # The server opens a session on a request without one and echoes the
    # client's otherwise.
    map $http_mcp_session_id $mcp_session { "" $request_id; default $http_mcp_session_id; }
    server { listen 127.0.0.1:%%PORT_B1%%; default_type application/json;
             location / { add_header Mcp-Session-Id $mcp_session; return 200 '{"backend=b1"}'; } }
    server { listen 127.0.0.1:%%PORT_B2%%; default_type application/json;
             location / { add_header Mcp-Session-Id $mcp_session; return 200 '{"backend=b2"}'; } }
    server { listen 127.0.0.1:%%PORT_B3%%; default_type application/json;
             location / { add_header Mcp-Session-Id $mcp_session; return 200 '{"backend=b3"}'; } }
}
CONF
$t->run;

my %homes;
for my $client (1 .. 6) {
    my $r = $t->post('/mcp', '{"method":"initialize"}', type => 'application/json');
    my $sid = StickyTest::header($r, 'Mcp-Session-Id');
    my $home = backend_of($r);
    ok($sid && $home ne 'none', "client $client: session opened on $home");
    $homes{$home}++;
    my @later = map {
        $t->post('/mcp', '{"method":"tools/call"}', type => 'application/json',
            headers => { 'Mcp-Session-Id' => $sid })
    } 1 .. 5;
    is_deeply(count_backends(@later), { $home => 5 }, "client $client: every later request on $home");
    is_deeply([map { sticky_of($_) } @later], [('HIT') x 5], "client $client: each a hit");
}
cmp_ok(scalar keys %homes, '>', 1, 'sessions spread over the servers');

# An id the client made up, echoed by whichever server gets it: never recorded.
my $r = $t->post('/mcp', '{}', type => 'application/json', headers => { 'Mcp-Session-Id' => 'madeup1234' });
is(sticky_of($r), 'MISS', 'a made-up id is unknown');
is(sticky_of($t->post('/mcp', '{}', type => 'application/json', headers => { 'Mcp-Session-Id' => 'madeup1234' })),
    'MISS', 'and stays unknown after the server echoed it');

$t->stop;
done_testing;
