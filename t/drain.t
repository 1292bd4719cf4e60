#!/usr/bin/perl
# Draining a server: it gets no new sessions, keeps serving every live one
# until it ends, and the status page lists it with the sessions it still
# holds. `sticky_session_drain ADDRESS;` on every nginx (applied by reload),
# and nginx's own `server ... drain` where it exists (1.29.6+). Nobody is cut
# off, unlike `down`.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of sid_of sticky_of);

my $t = StickyTest->new;

sub config {
    my (%o) = @_;
    my $drain = $o{drain} // '';
    my $b2 = $o{native} ? 'drain' : '';
    my $zone = $o{zone} // 'drain';
    $t->write_config(<<"CONF");
http {
    access_log off;
    upstream app {
        sticky_session name=sid zone=$zone:1m;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%% $b2;
        server 127.0.0.1:%%PORT_B3%%;
        $drain
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / {
            proxy_pass http://app;
            add_header X-Sticky \$sticky_session_status always;
        }
        location = /status { sticky_session_status; }
    }
    %%BACKENDS(B1,B2,B3)%%
}
CONF
}

sub status_json { StickyTest::body($t->get('/status')) }

# --- bad configurations ---------------------------------------------------
{
    my $bad = StickyTest->new;
    for my $case (
        ["sticky_session name=sid; server 127.0.0.1:1; sticky_session_drain 127.0.0.1:2;",
            qr/"sticky_session_drain 127\.0\.0\.1:2" in \S+nginx\.conf:\d+ names no server of upstream "app"/],
        ["server 127.0.0.1:1; sticky_session_drain 127.0.0.1:1;",
            qr/"sticky_session_drain 127\.0\.0\.1:1" in \S+nginx\.conf:\d+ needs "sticky_session" in upstream "app"/],
    ) {
        my ($upstream, $want) = @$case;
        $bad->write_config(<<"CONF");
http {
    upstream app { $upstream }
    server { listen 127.0.0.1:%%PORT_FRONT%%; location / { proxy_pass http://app; } }
}
CONF
        my ($ok, $out) = $bad->test_config;
        ok(!$ok, "refused: $upstream");
        like($out, $want, 'says why, with file and line');
    }
}

# Learns $n new sessions: { id => backend }.
sub learn {
    my ($n) = @_;
    my %s;
    for (1 .. $n) {
        my $r = $t->get('/');
        $s{ sid_of($r) } = backend_of($r);
    }
    return \%s;
}

# Ids that no longer reach their backend as a HIT.
sub moved {
    my ($s) = @_;
    return [grep {
        my $r = $t->get("/n?sid=$_");
        !(backend_of($r) eq $s->{$_} && sticky_of($r) eq 'HIT')
    } sort keys %$s];
}

sub run_case {
    my ($what, %o) = @_;
    config(zone => $o{zone});
    $t->{pid} ? $t->reload : $t->run;
    my $before = learn(60);
    my %per;
    $per{$_}++ for values %$before;
    cmp_ok($per{b2} // 0, '>=', 15, "$what: b2 holds sessions before draining");

    config(%o);
    $t->reload;
    is_deeply(moved($before), [], "$what: every live session keeps its server, b2's included");
    my $after = learn(60);
    my %new;
    $new{$_}++ for values %$after;
    is($new{b2} // 0, 0, "$what: no new session goes to the draining server");
    is(($new{b1} // 0) + ($new{b3} // 0), 60, "$what: they go to the others");
    my $b2 = '127.0.0.1:' . $t->port('B2');
    my $json = status_json();
    like($json, qr/"draining":\["\Q$b2\E"\]/, "$what: the status page lists it as draining");
    my ($left) = $json =~ /"\Q$b2\E":(\d+)/;
    is($left, $per{b2}, "$what: with the sessions it still holds");
    is_deeply(moved($before), [], "$what: and still serves them");
    config(zone => $o{zone});
    $t->reload;
}

run_case('sticky_session_drain', zone => 'directive',
    drain => 'sticky_session_drain 127.0.0.1:%%PORT_B2%%;');
SKIP: {
    skip 'server ... drain needs nginx >= 1.29.6', 7 if $t->nginx_version < 1_029_006;
    run_case('server ... drain', zone => 'native', native => 1);
}

$t->stop;
done_testing;
