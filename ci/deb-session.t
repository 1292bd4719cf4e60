#!/usr/bin/perl
# Run by ci/deb-test.sh with the package installed: Debian's /usr/sbin/nginx
# loads the module the way /etc/nginx/nginx.conf does (modules-enabled), and
# a session sticks through it.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of count_backends sid_of);

my $t = StickyTest->new;
$t->write_config(<<'CONF');
include /etc/nginx/modules-enabled/*.conf;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    upstream app {
        sticky_session name=sid zone=debian_package:1m;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
        server 127.0.0.1:%%PORT_B3%%;
    }
    server { listen 127.0.0.1:%%PORT_FRONT%%; location / { proxy_pass http://app; } }
    %%BACKENDS(B1,B2,B3)%%
}
CONF
# Debian's prefix (/usr/share/nginx) has modules -> /usr/lib/nginx/modules,
# which the load file names relative to the prefix; the test's prefix too.
symlink '/usr/lib/nginx/modules', $t->dir . '/modules'
    or die "symlink: $!";
$t->run;
my $r = $t->get('/');
my ($sid, $home) = (sid_of($r), backend_of($r));
ok($sid && $home ne 'none', "a new session on $home");
is_deeply(count_backends(map { $t->get("/n?sid=$sid") } 1 .. 9), { $home => 9 },
    'it sticks through the packaged module');
$t->stop;
done_testing;
