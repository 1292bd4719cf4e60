#!/usr/bin/perl
# Ids handed out in JSON: a real-time framework's long-polling handshake
# (`0{"sid":"...","upgrades":[...]}` as text/plain) and an API's
# application/json answer; every later request of that client carries
# ?sid= and reaches the node that opened the session, through 4 workers.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(count_backends sticky_of);

my $t = StickyTest->new;
# Each node: a handshake, an API answer and a negotiate call, each opening a
# session, and the same answer naming the node once the client has one.
sub backend {
    my ($n) = @_;
    return <<"NODE";
    server { listen 127.0.0.1:%%PORT_B$n%%; default_type text/plain;
             location /poll/ { if (\$arg_sid = "") { return 200 '0{"sid":"\$request_id","upgrades":["websocket"],"pingInterval":25000}'; }
                               return 200 'backend=b$n ok'; }
             location /api/ { default_type application/json;
                              return 200 '{\\n  "session": {\\n    "sid" : "\$request_id"\\n  },\\n  "backend": "backend=b$n"\\n}'; }
             location /hub/ { default_type application/json;
                              return 200 '{"connectionId":"c-\$request_id","connectionToken":"\$request_id","negotiateVersion":1,"backend":"backend=b$n"}'; } }
NODE
}

(my $conf = <<'CONF') =~ s/^%%NODES%%\n/join '', map { backend($_) } 1 .. 3/me;
worker_processes 4;
http {
    access_log off;
    upstream rt {
        sticky_session name=sid zone=json:1m types=text/plain,application/json;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
        server 127.0.0.1:%%PORT_B3%%;
    }
    # A negotiate call answers {"connectionToken":"T"}; later requests carry ?id=T.
    upstream hub {
        sticky_session name=id:connectionToken zone=hub:1m types=application/json;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
        server 127.0.0.1:%%PORT_B3%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%% reuseport;
        location / { proxy_pass http://rt; add_header X-Sticky $sticky_session_status always; }
        location /hub/ { proxy_pass http://hub; add_header X-Sticky $sticky_session_status always; }
    }
%%NODES%%
}
CONF
$t->write_config($conf);
$t->run;

my %spread;
for my $client (1 .. 12) {
    my $hs = $t->get('/poll/?EIO=4&transport=polling');
    my ($sid) = StickyTest::body($hs) =~ /"sid":"(\w+)"/;
    ok($sid, "client $client: the handshake opened a session");
    my @polls = map { $t->get("/poll/?EIO=4&transport=polling&sid=$sid") } 1 .. 6;
    my $seen = count_backends(@polls);
    is(scalar keys %$seen, 1, "client $client: every poll on one node") or diag explain $seen;
    is_deeply([map { sticky_of($_) } @polls], [('HIT') x 6], "client $client: each a hit");
    $spread{$_}++ for keys %$seen;
}
cmp_ok(scalar keys %spread, '>', 1, 'sessions spread over the nodes');

# A pretty-printed application/json answer: the member is found across lines.
my $api = $t->get('/api/login');
my ($sid) = StickyTest::body($api) =~ /"sid" : "(\w+)"/;
my ($home) = StickyTest::body($api) =~ /backend=(b\d)/;
is_deeply(count_backends(map { $t->get("/poll/?sid=$sid") } 1 .. 6), { $home => 6 },
    'an id from a JSON API answer routes to its issuer');

# name=id:connectionToken: the token from the negotiate answer, then ?id=.
for my $client (1 .. 6) {
    my $neg = $t->post('/hub/negotiate', '');
    my ($token) = StickyTest::body($neg) =~ /"connectionToken":"(\w+)"/;
    my ($home) = StickyTest::body($neg) =~ /backend=(b\d)/;
    is_deeply(count_backends(map { $t->get("/hub/send?id=$token") } 1 .. 5), { $home => 5 },
        "hub client $client: the negotiated token routes ?id= to $home");
}

$t->stop;
done_testing;
