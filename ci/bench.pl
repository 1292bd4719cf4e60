#!/usr/bin/perl
# make bench: what sticky_session costs, side by side with what a user would
# pick instead. One front nginx (worker_processes 1) proxies to a backend
# nginx that answers from memory; both on loopback, ports chosen free.
#
# Primary figure: instructions per proxied request, counted by callgrind over
# BENCH_REQUESTS requests after a warm-up (nginx's own instructions included,
# the client and backends excluded), reproducible to well under 1 %.
# Secondary: wrk req/s and p99 latency, interleaved A B A B ... over
# BENCH_ROUNDS rounds, medians, front nginx and wrk pinned to different cores.
# Prints a table, then one `RATIO name value` line per comparison.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use StickyTest;

my $N = $ENV{BENCH_REQUESTS} // 400;
my $WARM = 50;
my $ROUNDS = $ENV{BENCH_ROUNDS} // 5;
my $SECONDS = $ENV{BENCH_SECONDS} // 2;
# BENCH_ONLY=stall: only the state-save section (minutes less).
my $ONLY_STALL = ($ENV{BENCH_ONLY} // '') eq 'stall';
my $ROOT = $StickyTest::ROOT;
my $NGINX = "$ROOT/build/nginx";
my $MODULE = "$ROOT/build/ngx_http_upstream_sticky_session_module.so";

my $t = StickyTest->new(keep => $ENV{BENCH_PROFILE});    # ports and a scratch directory
my $dir = $t->dir;
my %port = map { $_ => $t->port($_) } qw(FRONT B1 B2);
# A Redis for the sync row (the hit path must not touch it).
$port{REDIS} = $t->redis;
{
    open my $fh, '>', "$dir/sync.key" or die $!;
    print $fh "bench-sync-key-0123456789abcdef\n";
    close $fh;
    chmod 0600, "$dir/sync.key";
}

# Everything started here is stopped here, however the run ends.
my @started;
END {
    for my $pidfile (map { "$dir/$_/logs/nginx.pid" } qw(front anchor stall backend)) {
        open my $fh, '<', $pidfile or next;
        my $p = <$fh>;
        kill 'QUIT', $p if $p && $p =~ /^(\d+)/;
    }
    kill 'KILL', @started if @started;
}

# --- pages the backend serves from memory (open_file_cache) -------------
mkdir "$dir/html";
{
    # 64 KB of ordinary markup with ~200 links; SIDPLACEHOLDER becomes a new
    # id per response (backend-side sub_filter with $request_id).
    my $page = "<!doctype html><html><head><title>bench</title></head><body>\n";
    my $i = 0;
    while (length $page < 64 * 1024 - 200) {
        $page .= $i % 3 == 0
            ? "<li><a href=\"/item/$i?sid=SIDPLACEHOLDER&amp;v=$i\">item $i</a></li>\n"
            : "<p class=\"row\">Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.</p>\n";
        $i++;
    }
    $page .= "</body></html>\n";
    open my $fh, '>', "$dir/html/page64k.html" or die;
    print $fh $page;
    close $fh;
    # The same page as PHP writes it: ?PHPSESSID=...
    (my $php = $page) =~ s/\?sid=/?PHPSESSID=/g;
    open $fh, '>', "$dir/html/php64k.html" or die;
    print $fh $php;
    close $fh;
    # A long-polling handshake and an HTML page of the same size, requested
    # by targets of the same length, each handing out a new id.
    open $fh, '>', "$dir/html/small.json" or die;
    print $fh '0{"sid":"SIDPLACEHOLDER","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}';
    close $fh;
    open $fh, '>', "$dir/html/small.html" or die;
    print $fh '<!doctype html><p><a href="/chat?sid=SIDPLACEHOLDER&amp;v=1">chat</a> and a few more words, of the same size</p>';
    close $fh;
    # 100,000 session ids to learn before the hit-path measurement.
    open $fh, '>', "$dir/html/learn.html" or die;
    print $fh "<html><body>\n";
    printf $fh "<a href=\"/n?sid=known%06d\">%d</a>\n", $_, $_ for 1 .. 100_000;
    print $fh "</body></html>\n";
    close $fh;
    # 64 KB of links alternating between two ids new in every response
    # (ALTPH becomes the response's $request_id): with learn=all each link
    # differs from the one before, a table write unless max_learn= stops it.
    open $fh, '>', "$dir/html/alt64k.html" or die;
    print $fh "<html><body>\n";
    my $alt = '';
    $alt .= "<a href=\"/a?sid=ALTPH-a\">a</a>\n<a href=\"/a?sid=ALTPH-b\">b</a>\n" while length $alt < 64 * 1024 - 100;
    print $fh $alt, "</body></html>\n";
    close $fh;
    # 50,000 links whose ids are new in every response (FILLPH becomes the
    # response's $request_id): fills a large zone 50,000 sessions at a time.
    open $fh, '>', "$dir/html/fill.html" or die;
    print $fh "<html><body>\n";
    print $fh "<a href=\"/n?sid=FILLPH-$_\">x</a>\n" for 1 .. 50_000;
    print $fh "</body></html>\n";
    close $fh;
}

sub write_conf {
    my ($file, $text) = @_;
    open my $fh, '>', $file or die "$file: $!";
    print $fh $text;
    close $fh;
}

# --- backend nginx: its own process, pinned away from the front ----------
mkdir "$dir/backend";
mkdir "$dir/backend/logs";
write_conf("$dir/backend/nginx.conf", <<"CONF");
worker_processes 1;
worker_cpu_affinity 10;
pid logs/nginx.pid;
error_log logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    open_file_cache max=100;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$port{B1} reuseport backlog=4096;
        listen 127.0.0.1:$port{B2} reuseport backlog=4096;
        default_type text/html;
        root $dir/html;
        location ~ ^/(page|php)64k.html\$ { sub_filter SIDPLACEHOLDER \$request_id; sub_filter_once off; }
        location = /small.html { sub_filter SIDPLACEHOLDER \$request_id; }
        location = /small.json { default_type text/plain; sub_filter_types text/plain; sub_filter SIDPLACEHOLDER \$request_id; }
        location = /learn.html { }
        location = /fill.html { sub_filter FILLPH \$request_id; sub_filter_once off; }
        location = /alt64k.html { sub_filter ALTPH \$request_id; sub_filter_once off; }
        location = /setcookie { add_header Set-Cookie "sid=\$arg_id; Path=/"; return 200 "backend \$server_port\\n"; }
        location / { return 200 "backend \$server_port\\n"; }
    }
}
CONF
system($NGINX, '-p', "$dir/backend/", '-c', 'nginx.conf') == 0 or die "backend nginx failed\n";

# --- front nginx ------------------------------------------------------------
# Every configuration has its own server block with one `location /` and is
# sent the same request lines, so that the figures differ only by what the
# upstream and filter configuration cost (not by nginx's location lookup or
# request-line parsing of longer URIs).
my $servers = "server 127.0.0.1:$port{B1}; server 127.0.0.1:$port{B2};";

# name, description, upstream, extra location directives, request URI as a
# function of the request number (ids known to the table, unknown, or none).
my $known = sub { sprintf '/x?sid=known%06d', 1 + ($_[0] * 7919) % 100_000 };
my $unknown = sub { sprintf '/x?sid=known%06d', 100_001 + ($_[0] * 7919) % 100_000 };
my @configs = (
    [roundrobin    => 'plain round robin',                 'rr',        '', $known],
    [hash          => 'hash $arg_sid consistent',          'hash',      '', $known],
    [hit           => 'sticky_session hit (100,000 live)', 'sticky',    '', $known],
    [miss          => 'sticky_session miss (unknown ids)', 'sticky',    '', $unknown],
    [roundrobin64k => '64 KB page, round robin',           'rr',        '', sub { '/page64k.html' }],
    [learn64k      => '64 KB page, learning a new ?sid=',  'learn',     '', sub { '/page64k.html' }],
    [learnphp64k   => '64 KB page, learning ?PHPSESSID=',  'learn_php', '', sub { '/php64k.html' }],
    [learnall64k   => '64 KB page, learn=all (every link)', 'learn_all', '', sub { '/page64k.html' }],
    [subfilter64k  => '64 KB page, sub_filter one string', 'rr',        "sub_filter 'Lorem' 'Ipsum';", sub { '/page64k.html' }],
    [roundrobinalt64k => '64 KB of 2 ids alternating, round robin', 'rr', '', sub { '/alt64k.html' }],
    [learnalt64k   => 'the same, learn=all (max_learn=32)', 'learn_alt', '', sub { '/alt64k.html' }],
    [learnaltmax64k => 'the same, max_learn=1000000',      'learn_alt_max', '', sub { '/alt64k.html' }],
    [learnsmall    => 'small HTML page, learning ?sid=',   'learn',     '', sub { '/small.html' }],
    [learnjson     => 'JSON handshake, same size, "sid"',  'learn_json', '', sub { '/small.json' }],
    [rr_zk         => 'round robin, zone + keepalive',     'rr_zk',     '', $known],
    [sticky_zk     => 'sticky hit, zone + keepalive',      'sticky_zk', '', $known],
    [sync_hit      => 'sticky hit, sync=redis on',         'sticky_sync', '', $known],
    # The same two with room for every request in one pool block: whether
    # a request needs another 4 KB block (~600 instructions of malloc and
    # free) depends on its shape, and the hit's ~150 bytes of request data
    # tip this shape over (see README, Performance).
    [rr_pool8k     => 'round robin, request_pool_size 8k', 'rr',        '', $known, 'request_pool_size 8k;'],
    [hit_pool8k    => 'sticky hit, request_pool_size 8k',  'sticky',    '', $known, 'request_pool_size 8k;'],
);
my $front_servers = '';
for my $c (@configs) {
    my ($name, undef, $upstream, $extra, undef, $server_extra) = @$c;
    my $listen = $t->port("F_$name");
    $front_servers .= "    server { listen 127.0.0.1:$listen backlog=4096; " . ($server_extra // '')
        . " location / { proxy_pass http://$upstream; $extra } }\n";
}
# What every front configuration starts with: one worker on the first core,
# keep-alive to the client and to the backends.
sub front_head {
    my ($module) = @_;
    return <<"HEAD";
load_module $module;
worker_processes 1;
worker_cpu_affinity 01;
pid logs/nginx.pid;
error_log logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
HEAD
}
my $sync = "sync=redis://127.0.0.1:$port{REDIS} sync_key=$dir/sync.key";
my $front_conf = front_head($MODULE) . <<"CONF";
    upstream rr        { $servers }
    upstream hash      { hash \$arg_sid consistent; $servers }
    upstream sticky    { sticky_session name=sid zone=bench:16m; $servers }
    upstream learn     { sticky_session name=sid zone=learn:16m; $servers }
    upstream learn_php { sticky_session name=PHPSESSID zone=learn_php:16m; $servers }
    upstream learn_all { sticky_session name=sid zone=learn_all:16m learn=all; $servers }
    upstream learn_alt { sticky_session name=sid zone=learn_alt:16m learn=all; $servers }
    upstream learn_alt_max { sticky_session name=sid zone=learn_alt_max:16m learn=all max_learn=1000000; $servers }
    upstream learn_json { sticky_session name=sid zone=learn_json:16m types=text/plain; $servers }
    upstream rr_zk     { zone rr_zk 64k; $servers keepalive 16; }
    upstream sticky_zk { zone sticky_zk 64k; sticky_session name=sid zone=bench_zk:16m; $servers keepalive 16; }
    upstream sticky_sync { sticky_session name=sid zone=bench_sync:16m $sync; $servers }
    # Teachers: the same zones and servers, learning every id of a page, to
    # fill the tables with 100,000 sessions before the hit path is measured.
    upstream teach     { sticky_session name=sid zone=bench:16m learn=all max_learn=1000000 max_scan=8m; $servers }
    upstream teach_zk  { zone teach_zk 64k; sticky_session name=sid zone=bench_zk:16m learn=all max_learn=1000000 max_scan=8m; $servers keepalive 16; }
    upstream teach_sync { sticky_session name=sid zone=bench_sync:16m learn=all max_learn=1000000 max_scan=8m $sync; $servers }
$front_servers
    server {
        listen 127.0.0.1:$port{FRONT} backlog=4096;
        location = /status { sticky_session_status; }
        location / { proxy_pass http://teach; }
        location /zk/ { proxy_pass http://teach_zk/; }
        location /sync/ { proxy_pass http://teach_sync/; }
    }
}
CONF
mkdir "$dir/front";
mkdir "$dir/front/logs";
write_conf("$dir/front/nginx.conf", $front_conf);

# A keep-alive client issuing exact request counts.
sub client {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:" . ($port // $port{FRONT}), Timeout => 30)
        or die "connect: $!";
    return $s;
}
sub request {
    my ($s, $uri, $header) = @_;
    $header //= '';
    print $s "GET $uri HTTP/1.1\r\nHost: localhost\r\n$header\r\n";
    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        sysread($s, my $b, 1) or die "connection closed";
        $head .= $b;
    }
    my ($status) = $head =~ m{^HTTP/1\.1 (\d+)};
    my $len;
    my $body = '';
    if ($head =~ /^Content-Length:\s*(\d+)/mi) {
        $len = $1;
        while (length $body < $len) {
            my $n = sysread($s, my $b, $len - length $body) or die "short body";
            $body .= $b;
        }
    } elsif ($head =~ /^Transfer-Encoding:\s*chunked/mi) {
        while (1) {
            my $line = '';
            while ($line !~ /\r\n$/) { sysread($s, my $b, 1) or die; $line .= $b }
            (my $digits = $line) =~ s/[;\r\n].*//s;
            my $size = hex $digits;
            my $rest = $size + 2;
            while ($rest > 0) { my $n = sysread($s, my $b, $rest) or die; $rest -= $n }
            last if $size == 0;
        }
    }
    die "status $status for $uri\n" unless $status == 200;
    return $body;
}

# The session table's counters (JSON status page), to check that each
# configuration measured the path it claims to.
sub counters {
    my ($zone) = @_;
    my $s = client();
    my $json = request($s, '/status');
    close $s;
    my ($z) = $json =~ /"\Q$zone\E":\{([^}]*)\}/ or die "no zone $zone in status: $json\n";
    return { map { /"(\w+)":(\d+)/ ? ($1 => $2) : () } split /,/, $z };
}

sub learn_ids {
    my $s = client();
    # Whichever backend answers, all 100,000 ids are learned from the page.
    request($s, $_) for '/learn.html', '/zk/learn.html', '/sync/learn.html';
    close $s;
    # The synced zone's sessions reach Redis before anything is measured.
    my ($last, $deadline) = (-1, time + 600);
    while (time < $deadline) {
        my $s = client();
        my ($published) = request($s, '/status') =~ /"published":(\d+)/;
        close $s;
        # Settled: nothing more published in the last second.
        last if defined $published && $published == $last;
        $last = $published // -1;
        sleep 1;
    }
}

sub wait_port {
    my ($port) = @_;
    $port //= $port{FRONT};
    my $deadline = time + 60;
    until (IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")) {
        die "front nginx did not start\n" if time > $deadline;
        sleep 0.2;
    }
}

# --- instructions per request, under callgrind ------------------------------
# Runs $nginx on $conf_dir's nginx.conf under callgrind; after $prepare->(),
# measures each [name, port, uri-of-n, header-of-n] of @$measure and calls
# $check->(name, before) around it when given. Fills %ir.
my %ir;
my $writes_per_hit;
sub callgrind_run {
    my (%a) = @_;
    my $pid = fork // die;
    if ($pid == 0) {
        open STDOUT, '>', "$a{dir}/callgrind.out.log";
        open STDERR, '>&', \*STDOUT;
        exec 'valgrind', '--tool=callgrind', '--dump-instr=no',
            "--callgrind-out-file=$a{dir}/callgrind.%p.out",
            $a{nginx}, '-p', "$a{dir}/", '-c', 'nginx.conf', '-g', 'daemon off; master_process off;';
        die "exec valgrind: $!";
    }
    push @started, $pid;
    wait_port($a{port});
    $a{prepare}->();
    for my $m (@{ $a{measure} }) {
        my ($name, $port, $uri, $header) = @$m;
        $header //= sub { '' };
        my $state = $a{before} ? $a{before}->($name) : undef;
        my $s = client($port);
        request($s, $uri->($_), $header->($_)) for 1 .. $WARM;
        system("callgrind_control -z $pid >/dev/null") == 0 or die "callgrind_control -z failed\n";
        request($s, $uri->($WARM + $_), $header->($WARM + $_)) for 1 .. $N;
        # Event totals since the zero: "Totals: Ir" then "Th 1  1,234,567".
        my $out = `callgrind_control -e Ir $pid 2>&1`;
        my ($total) = $out =~ /Th\s+1\s+([\d,]+)/;
        die "no callgrind totals for $name:\n$out" unless defined $total;
        $total =~ tr/,//d;
        $ir{$name} = $total / $N;
        # BENCH_PROFILE=1 keeps a callgrind dump per configuration.
        system("callgrind_control --dump=$name $pid >/dev/null") if $ENV{BENCH_PROFILE};
        close $s;
        $a{after}->($name, $state) if $a{after};
    }
    kill 'QUIT', $pid;
    waitpid $pid, 0;
    @started = ();
}

if (!$ONLY_STALL) {
    my %expect = (hit => ['bench', 'hits'], miss => ['bench', 'misses'], sticky_zk => ['bench_zk', 'hits'],
        sync_hit => ['bench_sync', 'hits'], hit_pool8k => ['bench', 'hits']);
    callgrind_run(
        nginx   => $NGINX,
        dir     => "$dir/front",
        port    => $port{FRONT},
        prepare => \&learn_ids,
        measure => [map { [$_->[0], $t->port("F_$_->[0]"), $_->[4]] } @configs],
        before  => sub { my $e = $expect{ $_[0] }; $e && counters($e->[0]) },
        after   => sub {
            my ($name, $before) = @_;
            my $e = $expect{$name} or return;
            my ($zone, $what) = @$e;
            my $now = counters($zone);
            my $n = $now->{$what} - $before->{$what};
            die "$name: $n of " . ($WARM + $N) . " requests counted as $what in zone $zone\n"
                unless $n == $WARM + $N;
            $writes_per_hit = ($now->{refreshes} - $before->{refreshes}) / ($WARM + $N)
                if $name eq 'hit';
        },
    );
}

# --- the anchor: nginx 1.30's own `sticky learn`, on that nginx --------------
# Built from ../shared/nginx-src with this module (ci/nginx-version.sh); the
# same cookie request shape for its sticky learn and for ours, 1,000 sessions
# each, learned from Set-Cookie.
my @anchor;
if (!$ENV{BENCH_NO_ANCHOR} && !$ONLY_STALL) {
    my ($build) = grep { m{/} } split /\n/, `$ROOT/ci/nginx-version.sh 1.30.4`;
    die "bench: nginx 1.30.4 did not build\n" unless $build && -x "$build/objs/nginx";
    my %p = map { $_ => $t->port("A_$_") } qw(CTL rr nsticky ours);
    mkdir "$dir/anchor";
    mkdir "$dir/anchor/logs";
    write_conf("$dir/anchor/nginx.conf", front_head("$build/objs/ngx_http_upstream_sticky_session_module.so") . <<"CONF");
    upstream rr130      { $servers }
    upstream nsticky    { sticky learn create=\$upstream_cookie_sid lookup=\$cookie_sid zone=nsticky:16m; $servers }
    upstream ours130    { sticky_session name=sid zone=ours130:16m lookup=cookie; $servers }
    server { listen 127.0.0.1:$p{CTL}; location / { return 204; } location = /status { sticky_session_status; } }
    server { listen 127.0.0.1:$p{rr} backlog=4096; location / { proxy_pass http://rr130; } }
    server { listen 127.0.0.1:$p{nsticky} backlog=4096; location / { proxy_pass http://nsticky; } }
    server { listen 127.0.0.1:$p{ours} backlog=4096; location / { proxy_pass http://ours130; } }
}
CONF
    my %home;
    my $cookie = sub { sprintf "Cookie: sid=known%06d\r\n", 1 + ($_[0] * 7919) % 1000 };
    @anchor = (
        [rr130      => 'nginx 1.30: round robin',            $p{rr}],
        [nsticky130 => 'nginx 1.30: its own sticky learn hit', $p{nsticky}],
        [ours130    => 'nginx 1.30: sticky_session hit',     $p{ours}],
    );
    callgrind_run(
        nginx   => "$build/objs/nginx",
        dir     => "$dir/anchor",
        port    => $p{CTL},
        prepare => sub {
            for my $port ($p{nsticky}, $p{ours}) {
                my $s = client($port);
                $home{$port}{$_} = request($s, sprintf('/setcookie?id=known%06d', $_)) for 1 .. 1000;
                close $s;
            }
            my $s = client($p{CTL});
            my ($entries) = request($s, '/status') =~ /"ours130":\{"capacity":\d+,"entries":(\d+)/;
            close $s;
            die "bench: ours130 learned ${\ ($entries // 0)} of 1000 sessions\n" unless ($entries // 0) == 1000;
        },
        measure => [map { [$_->[0], $_->[2], sub { '/x' }, $cookie] } @anchor],
        # Both sticky methods really route by the session: each of 50
        # sessions answered by the server that issued it.
        after => sub {
            my ($name) = @_;
            my ($port) = map { $_->[2] } grep { $_->[0] eq $name } @anchor;
            return unless $home{$port};
            my $s = client($port);
            for my $id (map { 1 + $_ * 19 } 0 .. 49) {
                my $got = request($s, '/x', sprintf("Cookie: sid=known%06d\r\n", $id));
                die "bench: $name sent session $id to $got, not to $home{$port}{$id}"
                    unless $got eq $home{$port}{$id};
            }
            close $s;
        },
    );
}

# --- req/s and p99 with wrk, interleaved -------------------------------------
my %wrk;
if (!$ONLY_STALL && `which wrk 2>/dev/null`) {
    write_conf("$dir/front/nginx.conf", $front_conf);
    system($NGINX, '-p', "$dir/front/", '-c', 'nginx.conf') == 0 or die "front nginx failed\n";
    wait_port();
    learn_ids();
    for my $round (1 .. $ROUNDS) {
        for my $c (@configs) {
            my ($name, undef, undef, undef, $uri) = @$c;
            my $url = 'http://127.0.0.1:' . $t->port("F_$name") . $uri->(42);
            my $out = `taskset -c 1 wrk -t1 -c8 -d${SECONDS}s --latency '$url' 2>&1`;
            my ($rps) = $out =~ /Requests\/sec:\s*([\d.]+)/;
            my ($p99, $unit) = $out =~ /^\s*99%\s+([\d.]+)(us|ms|s)/m;
            $p99 *= { us => 1, ms => 1000, s => 1e6 }->{$unit} if defined $p99;
            push @{ $wrk{$name}{rps} }, $rps // 0;
            push @{ $wrk{$name}{p99} }, $p99 // 0;
        }
    }
    my $pid = `cat $dir/front/logs/nginx.pid`;
    chomp $pid;
    kill 'QUIT', $pid if $pid;
}

# --- the event loop while a large table is saved ----------------------------
# A 64 MB zone filled to 90 % (3.8 million sessions) with state= saved every
# second: the longest wait of a steady keep-alive client over 5 seconds of
# saves, then over 5 seconds of the same nginx with saving put off (reloaded
# with save_every=1h). The save runs in a thread; what is left on the event
# loop is starting it.
my %stall;
if (!$ENV{BENCH_NO_STALL}) {
    my $sp = $t->port('STALL');
    mkdir "$dir/stall";
    mkdir "$dir/stall/logs";
    # Run as root, workers are nobody: the state directory must be theirs.
    chown((getpwnam('nobody'))[2] // -1, -1, "$dir/stall") if $> == 0;
    my $conf = sub {
        my ($every) = @_;
        write_conf("$dir/stall/nginx.conf", front_head($MODULE) . <<"CONF");
    upstream st { sticky_session name=sid zone=stall:64m state=$dir/stall/table save_every=$every learn=all max_learn=1000000 max_scan=8m; $servers }
    server { listen 127.0.0.1:$sp backlog=4096;
             location = /status { sticky_session_status; }
             location / { proxy_pass http://st; } }
}
CONF
    };
    $conf->('1s');
    system($NGINX, '-p', "$dir/stall/", '-c', 'nginx.conf') == 0 or die "stall nginx failed\n";
    wait_port($sp);
    my $entries = sub {
        my $s = client($sp);
        my ($n) = request($s, '/status') =~ /"stall":\{"capacity":(\d+),"entries":(\d+)/ ? ($2, $1) : (0);
        close $s;
        return $n;
    };
    my $s = client($sp);
    my $capacity;
    {
        my $st = request($s, '/status');
        ($capacity) = $st =~ /"stall":\{"capacity":(\d+)/ or die "no stall zone in status\n";
    }
    request($s, '/fill.html') for 1 .. int(0.9 * $capacity / 50_000);
    close $s;
    my $filled = $entries->();
    # Each client request: its latency; the worst and the 99.9th percentile.
    my $window = sub {
        my $c = client($sp);
        my @lat;
        my $end = time + 5;
        while (time < $end) {
            my $t0 = time;
            request($c, '/x');
            push @lat, (time - $t0) * 1000;
        }
        close $c;
        @lat = sort { $a <=> $b } @lat;
        return { max => $lat[-1], p999 => $lat[int(0.999 * $#lat)], n => scalar @lat };
    };
    my $saved_at = sub { (Time::HiRes::stat("$dir/stall/table"))[9] // 0 };
    my $before = $saved_at->();
    $stall{saving} = $window->();
    die "bench: the table was not saved while the client waited\n" unless $saved_at->() > $before;
    $conf->('1h');
    my $pid = `cat $dir/stall/logs/nginx.pid`;
    chomp $pid;
    kill 'HUP', $pid;
    sleep 2;
    $stall{idle} = $window->();
    kill 'QUIT', $pid;
    $stall{line} = sprintf "state save, 64 MB zone with %d sessions (%.0f %%), saved every second:\n"
        . "  longest client wait %.2f ms, 99.9th percentile %.2f ms (%d requests in 5 s)\n"
        . "  the same nginx not saving: longest %.2f ms, 99.9th %.2f ms (%d requests)\n",
        $filled, 100 * $filled / $capacity,
        @{ $stall{saving} }{qw(max p999 n)}, @{ $stall{idle} }{qw(max p999 n)};
}

my $bpid = `cat $dir/backend/logs/nginx.pid`;
chomp $bpid;
kill 'QUIT', $bpid if $bpid;

sub median { my @s = sort { $a <=> $b } @_; @s ? $s[$#s / 2] : 0 }

if (!$ONLY_STALL) {
    printf "\n%-16s %-42s %14s %10s %10s\n", 'config', 'what', 'instr/request', 'req/s', 'p99 (us)';
    for my $c (@configs, @anchor) {
        my ($name, $what) = @$c;
        printf "%-16s %-42s %14.0f %10s %10s\n", $name, $what, $ir{$name},
            $wrk{$name} ? sprintf('%.0f', median(@{ $wrk{$name}{rps} })) : '-',
            $wrk{$name} ? sprintf('%.0f', median(@{ $wrk{$name}{p99} })) : '-';
    }
    print "callgrind dumps: $dir/front/callgrind.*.out.* (one per configuration, in order)\n"
        if $ENV{BENCH_PROFILE};
    print "\n(instructions: callgrind, $N requests after $WARM warm-up, one keep-alive client;"
        . " req/s, p99: wrk -c8, median of $ROUNDS interleaved ${SECONDS}s rounds)\n\n";
    printf "table writes per hit (last-use refreshes / hits): %.3f\n\n", $writes_per_hit
        if defined $writes_per_hit;
    my @ratios = (
        [hit_vs_roundrobin => 'hit', 'roundrobin'],
        [miss_vs_roundrobin => 'miss', 'roundrobin'],
        [hash_vs_roundrobin => 'hash', 'roundrobin'],
        [learn64k_vs_roundrobin64k => 'learn64k', 'roundrobin64k'],
        [learn64k_vs_subfilter64k => 'learn64k', 'subfilter64k'],
        [learnphp64k_vs_roundrobin64k => 'learnphp64k', 'roundrobin64k'],
        [learnphp64k_vs_subfilter64k => 'learnphp64k', 'subfilter64k'],
        [learnall64k_vs_roundrobin64k => 'learnall64k', 'roundrobin64k'],
        [learnalt64k_vs_roundrobinalt64k => 'learnalt64k', 'roundrobinalt64k'],
        [learnaltmax64k_vs_roundrobinalt64k => 'learnaltmax64k', 'roundrobinalt64k'],
        [zone_keepalive_vs_plain => 'sticky_zk', 'rr_zk'],
        [json_handshake_vs_html_same_size => 'learnjson', 'learnsmall'],
        [hit_sync_vs_hit => 'sync_hit', 'hit'],
        [hit_vs_roundrobin_pool8k => 'hit_pool8k', 'rr_pool8k'],
        @anchor ? (
            [hit_vs_nginx_sticky_learn => 'ours130', 'nsticky130'],
            [nginx_sticky_learn_vs_roundrobin => 'nsticky130', 'rr130'],
            [hit_vs_roundrobin_on_1_30 => 'ours130', 'rr130'],
        ) : (),
    );
    printf "RATIO %s %.3f\n", $_->[0], $ir{ $_->[1] } / $ir{ $_->[2] } for @ratios;
}
if (%stall) {
    print "\n$stall{line}";
    printf "RATIO state_save_longest_wait_ms %.3f\n", $stall{saving}{max};
    printf "RATIO state_save_longest_wait_vs_not_saving %.3f\n",
        $stall{saving}{max} / $stall{idle}{max};
}
