#!/usr/bin/perl
# Routes in ids (route=suffix:.): Tomcat-style backends tag their ids with
# their jvmRoute (ABC123.node1). The module learns route -> server from the
# ids it learns, and routes an id the table no longer knows by its route;
# a route seen from two servers is never used; the status page lists them.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of sticky_of);

my $t = StickyTest->new;
my $backends = '';
for my $n (1 .. 3) {
    $backends .= <<"B";
    map \$arg_jsessionid \$jsid_b$n { "" "\${request_id}.node$n"; default \$arg_jsessionid; }
    server { listen 127.0.0.1:%%PORT_B$n%%; default_type text/html;
             location / { return 200 "backend=b$n <a href=\\"/n;jsessionid=\$jsid_b$n\\">n</a>\\n"; }
             location /shared { return 200 "backend=b$n <a href=\\"/n;jsessionid=\${request_id}.node9\\">n</a>\\n"; } }
B
}
$t->write_config(<<"CONF");
http {
    access_log off;
    upstream app {
        sticky_session name=jsessionid zone=rt:64k timeout=2s route=suffix:.;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
        server 127.0.0.1:%%PORT_B3%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / {
            proxy_pass http://app;
            add_header X-Sticky \$sticky_session_status always;
        }
        location = /status { sticky_session_status; }
    }
$backends
}
CONF
$t->run;

my %home;
for (1 .. 30) {
    my $r = $t->get('/');
    my ($id) = StickyTest::body($r) =~ /jsessionid=([\w.]+)/;
    $home{$id} = backend_of($r);
}
is(scalar(keys %home), 30, '30 sessions handed out');
my $hits = grep { sticky_of($t->get("/x?jsessionid=$_")) eq 'HIT' } keys %home;
is($hits, 30, 'each is in the table');

# Two servers hand out ids with the same route: it is never used.
$t->get('/shared') for 1 .. 3;

sleep 3;    # every table entry has expired (timeout=2s); the routes stay
my (@wrong, %status);
for my $id (sort keys %home) {
    my $r = $t->get("/x?jsessionid=$id");
    $status{ sticky_of($r) }++;
    push @wrong, "$id -> " . backend_of($r) unless backend_of($r) eq $home{$id};
}
is_deeply(\%status, { ROUTE => 30 }, 'ids the table no longer knows are routed by their route');
is_deeply(\@wrong, [], 'each to the server that issued it');

# An id the table never had (evicted, or learned by another nginx) with a
# known route goes where its route says.
my %missing;
for my $n (1 .. 3) {
    my $r = $t->get("/x?jsessionid=NEVERSEEN$n.node$n");
    $missing{ backend_of($r) . ' ' . sticky_of($r) }++;
}
is_deeply(\%missing, { 'b1 ROUTE' => 1, 'b2 ROUTE' => 1, 'b3 ROUTE' => 1 },
    'ids the table never had are routed by their route too');

my %unknown;
$unknown{ sticky_of($t->get("/x?jsessionid=ABCDEF.node7")) }++ for 1 .. 3;
is_deeply(\%unknown, { MISS => 3 }, 'an unknown route is balanced as usual');
my %ambiguous;
$ambiguous{ sticky_of($t->get("/x?jsessionid=ABCDEF.node9")) }++ for 1 .. 3;
is_deeply(\%ambiguous, { MISS => 3 }, 'a route seen from two servers is not used');

my $json = StickyTest::body($t->get('/status'));
my %want = map { ("node$_" => '127.0.0.1:' . $t->port("B$_")) } 1 .. 3;
my ($routes) = $json =~ /"routes":\{([^}]*)\}/;
my %got = ($routes // '') =~ /"(\w+)":"?([\w.:]+|null)"?/g;
is_deeply(\%got, { %want, node9 => 'null' }, 'the status page lists the routes and their servers');

# nginx 1.29.6+ names routes on server lines: they hold from the start.
SKIP: {
    skip 'server ... route= needs nginx >= 1.29.6', 2 if $t->nginx_version < 1_029_006;
    my $e = StickyTest->new;
    my $b = join "\n", map {
        "    server { listen 127.0.0.1:%%PORT_B$_%%; location / { return 200 \"backend=b$_\\n\"; } }"
    } 1 .. 2;
    $e->write_config(<<"CONF");
http {
    access_log off;
    upstream app {
        sticky_session name=jsessionid zone=named:64k route=suffix:.;
        server 127.0.0.1:%%PORT_B1%% route=alpha;
        server 127.0.0.1:%%PORT_B2%% route=beta;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / { proxy_pass http://app; add_header X-Sticky \$sticky_session_status always; }
    }
$b
}
CONF
    $e->run;
    my %seen;
    for my $i (1 .. 6) {
        my $r = $e->get("/x?jsessionid=never-seen-$i.beta");
        $seen{ backend_of($r) . ' ' . sticky_of($r) }++;
    }
    is_deeply(\%seen, { 'b2 ROUTE' => 6 }, 'route=beta on a server line routes ids ending in .beta there');
    my %alpha;
    $alpha{ backend_of($e->get("/x?jsessionid=x$_.alpha")) }++ for 1 .. 4;
    is_deeply(\%alpha, { b1 => 4 }, 'and .alpha to the other');
    $e->stop;
}

$t->stop;
done_testing;
