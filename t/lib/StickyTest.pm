package StickyTest;

# A small nginx-tests style harness: writes nginx.conf from a template with
# free loopback ports, starts/reloads/stops nginx, speaks raw HTTP, runs
# forked Perl backends, and fails the test on [alert]/[crit]/[emerg] lines.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Socket qw(IPPROTO_TCP TCP_NODELAY SOL_SOCKET SO_REUSEADDR);
use Test::More;
use Time::HiRes qw(sleep time);
use Exporter qw(import);

our @EXPORT_OK = qw(backend_of sid_of sticky_of count_backends secret_file sync_status wait_for);

our $ROOT = abs_path(dirname(__FILE__) . '/../..');

# Deadlines stretch under valgrind (make memcheck sets STICKY_SLOW).
our $SLOW = $ENV{STICKY_SLOW} ? 20 : 1;

sub new {
    my ($class, %opt) = @_;
    my $dir = tempdir('sticky-XXXXXX', TMPDIR => 1, CLEANUP => !($ENV{TEST_KEEP} || $opt{keep}));
    chmod 0755, $dir;
    mkdir "$dir/logs";
    my $self = bless {
        dir      => $dir,
        nginx    => abs_path($ENV{STICKY_NGINX} // "$ROOT/build/nginx"),
        module   => $ENV{STICKY_MODULE} ? abs_path($ENV{STICKY_MODULE})
            : $ENV{STICKY_MODULE} // "$ROOT/build/ngx_http_upstream_sticky_session_module.so",
        ports    => {},
        backends => [],
        owner    => $$,
        %opt,
    }, $class;
    return $self;
}

sub dir { $_[0]{dir} }

# The version of the nginx under test as a number: 1.30.4 is 1030004.
sub nginx_version {
    my ($self) = @_;
    my ($maj, $min, $pat) = `'$self->{nginx}' -v 2>&1` =~ m{nginx/(\d+)\.(\d+)\.(\d+)}
        or die "cannot tell the version of $self->{nginx}";
    return $maj * 1_000_000 + $min * 1000 + $pat;
}

# The kernel's range for the local ports of outgoing connections (and of
# sockets bound to port 0). Test ports are chosen below it: there no client
# or upstream connection of a test running beside this one can take a port
# between its choice and nginx's bind().
our $EPHEMERAL_LO = do {
    my $lo = 32768;
    if (open my $fh, '<', '/proc/sys/net/ipv4/ip_local_port_range') {
        $lo = $1 if (<$fh> // '') =~ /^\s*(\d+)/;
    }
    $lo;
};

# A free loopback port, the same one for the same name within a test, and
# another one for every name (two server blocks on one port would silently
# share it): a random port below the ephemeral range that can be bound now.
sub port {
    my ($self, $name) = @_;
    return $self->{ports}{$name} //= do {
        my %taken = map { defined $_ ? ($_ => 1) : () } values %{ $self->{ports} };
        my $p;
        for (1 .. 1000) {
            my $try = $EPHEMERAL_LO > 11000 ? 10000 + int(rand($EPHEMERAL_LO - 10000)) : 0;
            next if $taken{$try};
            my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $try, Listen => 1, ReuseAddr => 1)
                or next;
            $try = $s->sockport;
            close $s;
            next if $taken{$try};
            $p = $try;
            last;
        }
        die "no free port for $name" unless $p;
        $p;
    };
}

# The standard backends, as server{} blocks of the same nginx:
# %%BACKENDS(B1,B2,B3)%% becomes one server per name on %%PORT_NAME%%, each
# answering "backend=bN" and a link that hands out ?sid= (the request's own
# id, or a new one), plus the map that makes the id.
sub backend_blocks {
    my ($names) = @_;
    my $conf = "    map \$arg_sid \$sid { \"\" \$request_id; default \$arg_sid; }\n";
    for my $name (split /,/, $names) {
        my $label = lc $name;
        $conf .= "    server { listen 127.0.0.1:%%PORT_$name%%; default_type text/html;\n"
            . "             location / { return 200 \"backend=$label <a href=\\\"/n?sid=\$sid\\\">n</a>\\n\"; } }\n";
    }
    return $conf;
}

# Writes nginx.conf: main-context boilerplate, then the template with
# %%BACKENDS(...)%% expanded (see backend_blocks), %%PORT_NAME%% replaced by
# free ports and %%TESTDIR%% by the prefix.
sub write_config {
    my ($self, $template, %opt) = @_;
    (my $conf = $template) =~ s/^[ \t]*%%BACKENDS\(([\w,]+)\)%%[ \t]*\n/backend_blocks($1)/gme;
    $conf =~ s/%%PORT_(\w+)%%/$self->port($1)/ge;
    $conf =~ s/%%TESTDIR%%/$self->{dir}/g;
    my $head = '';
    $head .= "load_module $self->{module};\n" if $self->{module} ne '' && !$opt{no_module};
    $head .= "user root;\n" if $> == 0;
    $head .= "pid logs/nginx.pid;\nerror_log logs/error.log " . ($opt{log_level} // 'notice') . ";\n";
    $head .= "worker_processes 1;\n" unless $conf =~ /^\s*worker_processes/m;
    $head .= "events { worker_connections 1024; }\n" unless $conf =~ /^\s*events/m;
    open my $fh, '>', "$self->{dir}/nginx.conf" or die $!;
    print $fh $head, $conf;
    close $fh;
    $self->{conf_text} = $head . $conf;
    return $self;
}

sub conf_path { "$_[0]{dir}/nginx.conf" }

# Runs `nginx -t`; returns (ok, output).
sub test_config {
    my ($self) = @_;
    my $out = `'$self->{nginx}' -p '$self->{dir}/' -c nginx.conf -t 2>&1`;
    return ($? == 0, $out);
}

sub run {
    my ($self) = @_;
    my $out = `'$self->{nginx}' -p '$self->{dir}/' -c nginx.conf 2>&1`;
    die "nginx failed to start: $out\n" . $self->error_log if $?;
    my $deadline = time + 10 * $SLOW;
    until (-s "$self->{dir}/logs/nginx.pid") {
        die "nginx pid file did not appear" if time > $deadline;
        sleep 0.05;
    }
    $self->{pid} = $self->read_pid;
    for my $p (values %{ $self->{ports} }) {
        $self->wait_port($p) if $self->{conf_text} =~ /listen\s+127\.0\.0\.1:$p\b/;
    }
    return $self;
}

sub read_pid {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/logs/nginx.pid" or return;
    my $pid = <$fh>;
    chomp $pid if defined $pid;
    return $pid;
}

sub wait_port {
    my ($self, $port) = @_;
    my $deadline = time + 10 * $SLOW;
    while (time < $deadline) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 1);
        return 1 if $s;
        sleep 0.05;
    }
    die "port $port never opened";
}

# Worker pids of our master.
sub workers {
    my ($self) = @_;
    my @pids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // next;
        my ($pid, $ppid) = $line =~ /^(\d+) \(.*\) \S+ (\d+)/ or next;
        push @pids, $pid if $ppid == $self->{pid};
    }
    return sort @pids;
}

# HUP, then wait until the old workers are gone and new ones answer.
sub reload {
    my ($self) = @_;
    my %old = map { $_ => 1 } $self->workers;
    kill 'HUP', $self->{pid};
    my $deadline = time + 15 * $SLOW;
    while (time < $deadline) {
        my @now = $self->workers;
        return 1 if @now && !grep { $old{$_} } @now;
        sleep 0.05;
    }
    die "reload did not replace workers";
}

# Stops nginx only (graceful QUIT, or $signal), leaving backends running.
sub stop_nginx {
    my ($self, $signal) = @_;
    if (my $pid = $self->{pid}) {
        my @workers = $self->workers;
        delete $self->{pid};
        kill $signal // 'QUIT', $pid;
        my $deadline = time + 10 * $SLOW;
        while (kill(0, $pid) && time < $deadline) { sleep 0.05 }
        kill 'KILL', $pid, @workers if kill 0, $pid;
    }
    unlink "$self->{dir}/logs/nginx.pid";
    return $self;
}

sub stop {
    my ($self) = @_;
    $_->() for @{ $self->{stop_hooks} || [] };
    for my $b (@{ $self->{backends} }) {
        kill 'KILL', $b;
        waitpid $b, 0;
    }
    $self->{backends} = [];
    $self->stop_nginx;
    my @bad = grep { /\[(alert|crit|emerg)\]/ } split /\n/, $self->error_log;
    @bad = grep { !/$self->{allow_alerts}/ } @bad if $self->{allow_alerts};
    ok(!@bad, 'no alerts in error.log') or diag join "\n", @bad;
    return $self;
}

sub DESTROY {
    my ($self) = @_;
    # The waitpid calls below must not change the exit status of a script
    # that died (a failed bench must fail `make bench`).
    local $?;
    # Forked helpers (load clients) must not tear down what they did not start.
    return if ($self->{owner} // $$) != $$;
    for my $b (@{ $self->{backends} || [] }) { kill 'KILL', $b; waitpid $b, 0 }
    if (my $dns = delete $self->{dns_pid}) { kill 'TERM', $dns; waitpid $dns, 0 }
    $self->kill_redis($_, 'TERM') for keys %{ $self->{redis} || {} };
    # A test that died early: stop nginx (TERM, so the master takes its
    # workers along; a KILLed master would leave them running).
    $self->stop_nginx('TERM') if $self->{pid};
}

sub error_log {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/logs/error.log" or return '';
    local $/;
    return <$fh> // '';
}

# One request on a new connection; returns the raw response.
sub http {
    my ($self, $request, %opt) = @_;
    my $port = $opt{port} // $self->port('FRONT');
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 5 * $SLOW)
        or die "connect $port: $!";
    print $s $request;
    my $resp = '';
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm(($opt{timeout} // 10) * $SLOW);
    while (1) {
        my $n = sysread $s, my $buf, 65536;
        last unless $n;
        $resp .= $buf;
    }
    alarm 0;
    return $resp;
}

sub get {
    my ($self, $uri, %opt) = @_;
    my $host = $opt{host} // 'localhost';
    my $extra = join '', map { "$_: $opt{headers}{$_}\r\n" } sort keys %{ $opt{headers} || {} };
    return $self->http("GET $uri HTTP/1.0\r\nHost: $host\r\n$extra\r\n", %opt);
}

# GET $uri until the backend named $name answers (round robin alternates
# between two servers): its response; dies if it never does.
sub get_from {
    my ($self, $name, $uri, %opt) = @_;
    for (1 .. 2) {
        my $r = $self->get($uri, %opt);
        return $r if backend_of($r) eq $name;
    }
    die "$uri: backend $name never answered\n";
}

sub post {
    my ($self, $uri, $body, %opt) = @_;
    my $host = $opt{host} // 'localhost';
    my $type = $opt{type} // 'application/x-www-form-urlencoded';
    my $extra = join '', map { "$_: $opt{headers}{$_}\r\n" } sort keys %{ $opt{headers} || {} };
    return $self->http("POST $uri HTTP/1.0\r\nHost: $host\r\nContent-Type: $type\r\n$extra"
        . "Content-Length: " . length($body) . "\r\n\r\n$body", %opt);
}

# A client connection kept open across requests, as browsers keep theirs.
sub connect {
    my ($self, %opt) = @_;
    return StickyTest::Conn->new($opt{port} // $self->port('FRONT'));
}

# Response helpers.
sub header { my ($resp, $name) = @_; $resp =~ /^\Q$name\E:\s*(.*?)\r?$/mi ? $1 : undef }
# Which backend answered ("backend=NAME" in the body), or 'none'.
sub backend_of { body($_[0]) =~ /backend=(\w+)/ ? $1 : 'none' }
# The session id the response's first link hands out ($name, default sid).
sub sid_of { my ($resp, $name) = @_; $name //= 'sid'; body($resp) =~ /\b\Q$name\E=([\w-]+)/ ? $1 : undef }
# $sticky_session_status as the tests' X-Sticky header reports it, or 'none'.
sub sticky_of { header($_[0], 'X-Sticky') // 'none' }
# How many of @responses each backend answered: { b1 => 3, b2 => 1 }.
sub count_backends { my %n; $n{ backend_of($_) }++ for @_; return \%n }
sub body { my ($resp) = @_; $resp =~ /\r\n\r\n(.*)\z/s ? $1 : '' }
sub status { my ($resp) = @_; $resp =~ m{^HTTP/1\.\d (\d+)} ? $1 : 0 }

# A DNS server for the test: dnsmasq on a free loopback port, answering
# from a hosts file that dns() rewrites ({ name => [addresses] }); nginx's
# `resolver 127.0.0.1:%%PORT_DNS%% valid=1s` asks it. Stopped with the test.
sub dns {
    my ($self, %hosts) = @_;
    my $file = "$self->{dir}/dns.hosts";
    open my $fh, '>', "$file.new" or die $!;
    for my $name (sort keys %hosts) {
        print $fh "$_ $name\n" for @{ $hosts{$name} };
    }
    close $fh;
    rename "$file.new", $file or die $!;
    if (my $pid = $self->{dns_pid}) {
        kill 'HUP', $pid;
        return $self;
    }
    my $port = $self->port('DNS');
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        # Not the test's output: prove waits for whoever holds it.
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', "$self->{dir}/logs/dnsmasq.log";
        exec 'dnsmasq', '--no-daemon', "--port=$port", '--listen-address=127.0.0.1',
            '--bind-interfaces', '--no-hosts', '--no-resolv', "--addn-hosts=$file",
            '--local-ttl=1', '--user=root', "--pid-file=", '--log-facility=/dev/null';
        die "dnsmasq: $!";
    }
    $self->{dns_pid} = $pid;
    push @{ $self->{stop_hooks} }, sub { kill 'TERM', $pid; waitpid $pid, 0; delete $self->{dns_pid} };
    sleep 0.3;
    return $self;
}

# Writes a key or credentials file ($mode, default 0600); returns its path.
sub secret_file {
    my ($path, $content, $mode) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print $fh $content;
    close $fh;
    chmod $mode // 0600, $path;
    return $path;
}

# The `sync` part of $t's status page (location /status) as a hash.
sub sync_status {
    my ($t) = @_;
    my ($sync) = body($t->get('/status')) =~ /"sync":\{(.*?)\}\}*\s*$/s;
    return { ($sync // '') =~ /"(\w+)":"?([\w.]+)"?/g };
}

# Passes once $cond holds, fails if it does not within $secs (default 10).
sub wait_for {
    my ($what, $cond, $secs) = @_;
    my $deadline = time + ($secs // 10);
    until ($cond->()) {
        return fail("$what (timed out)") if time > $deadline;
        select undef, undef, undef, 0.05;
    }
    return pass($what);
}

# A Redis for the test: redis-server on the free loopback port %%PORT_$name%%
# (default REDIS), without persistence, stopped with the test. After
# kill_redis, redis() starts it again on the same port. Extra server
# arguments in args => [...].
sub redis {
    my ($self, $name, %opt) = @_;
    $name //= 'REDIS';
    my $port = $self->port($name);
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', "$self->{dir}/logs/redis-$name.log";
        open STDERR, '>&', \*STDOUT;
        exec 'redis-server', '--port', $port, '--bind', '127.0.0.1', '--save', '',
            '--appendonly', 'no', '--dir', $self->{dir}, @{ $opt{args} || [] };
        die "redis-server: $!";
    }
    $self->{redis}{$name} = $pid;
    push @{ $self->{stop_hooks} }, sub { $self->kill_redis($name, 'TERM') }
        unless $self->{redis_hooked}{$name}++;
    my $deadline = time + 10 * $SLOW;
    until (($self->redis_cli($name, 'PING') // '') =~ /PONG/) {
        die "redis-server did not start" if time > $deadline;
        sleep 0.05;
    }
    return $port;
}

# Stops the test's Redis $name (KILL, or $signal) and waits for it.
sub kill_redis {
    my ($self, $name, $signal) = @_;
    my $pid = delete $self->{redis}{ $name // 'REDIS' } or return;
    kill $signal // 'KILL', $pid;
    waitpid $pid, 0;
}

# Runs redis-cli against the test's Redis $name; returns its output.
sub redis_cli {
    my ($self, $name, @args) = @_;
    my $port = $self->port($name // 'REDIS');
    # Not the test's output: "Could not connect" while a Redis starts.
    open my $saved, '>&', \*STDERR or die $!;
    open STDERR, '>', '/dev/null';
    my $ok = open my $fh, '-|', 'redis-cli', '-p', $port, @args;
    open STDERR, '>&', $saved;
    $ok or die "redis-cli: $!";
    local $/;
    my $out = <$fh>;
    close $fh;
    return $out;
}

# Starts a forked backend on $port (on 127.0.0.1, or on addr => ...). $handler gets (method, uri, headers
# hashref, body) and returns (status_line_and_headers, [body pieces], and
# optionally a sub that gets the socket afterwards, e.g. after a 101). Pieces
# are written separately with a pause, so nginx reads them as separate buffers.
sub backend {
    my ($self, $port, $handler, %opt) = @_;
    my $addr = $opt{addr} // '127.0.0.1';
    my $listen = IO::Socket::INET->new(
        LocalAddr => "$addr:$port", Listen => 64, ReuseAddr => 1,
    ) or die "backend listen $addr:$port: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $SIG{TERM} = sub { exit 0 };
        # A client (nginx worker) that goes away mid-response must not kill the backend.
        $SIG{PIPE} = 'IGNORE';
        while (my $c = $listen->accept) {
            setsockopt($c, IPPROTO_TCP, TCP_NODELAY, 1);
            my $head = '';
            while ($head !~ /\r\n\r\n/) {
                my $n = sysread $c, my $buf, 4096;
                last unless $n;
                $head .= $buf;
            }
            my ($h, $body) = split /\r\n\r\n/, $head, 2;
            next unless defined $h && length $h;
            $body //= '';
            my ($method, $uri) = $h =~ /^(\S+) (\S+)/;
            my %hdr = map { /^([^:]+):\s*(.*)$/ ? (lc $1 => $2) : () } split /\r\n/, $h;
            my $len = $hdr{'content-length'} // 0;
            while (length $body < $len) {
                my $n = sysread $c, my $buf, 65536;
                last unless $n;
                $body .= $buf;
            }
            my ($resp_head, $pieces, $after) = $handler->($method // '', $uri // '', \%hdr, $body);
            syswrite $c, $resp_head;
            for my $p (@$pieces) {
                sleep($opt{pause} // 0.02);
                syswrite $c, $p;
            }
            # An upgraded connection (101): the handler's code talks on it.
            $after->($c) if $after;
            close $c;
        }
        exit 0;
    }
    close $listen;
    push @{ $self->{backends} }, $pid;
    return $pid;
}

# Starts a program the test needs (a FastCGI server, say) with its output in
# logs/$name.log; it is stopped (KILL) with the backends. Waits for
# 127.0.0.1:$opt{port} to accept when given.
sub spawn {
    my ($self, $name, $cmd, %opt) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', "$self->{dir}/logs/$name.log";
        open STDERR, '>&', \*STDOUT;
        %ENV = (%ENV, %{ $opt{env} || {} });
        exec @$cmd;
        die "$cmd->[0]: $!";
    }
    push @{ $self->{backends} }, $pid;
    $self->wait_port($opt{port}) if $opt{port};
    return $pid;
}

# nginx's stock fastcgi_params in the test's directory, for configurations
# that `include fastcgi_params;` as deployments do.
sub write_fastcgi_params {
    my ($self) = @_;
    open my $p, '>', "$self->{dir}/fastcgi_params" or die $!;
    print $p map { "fastcgi_param $_->[0] $_->[1];\n" } (
        [QUERY_STRING => '$query_string'], [REQUEST_METHOD => '$request_method'],
        [CONTENT_TYPE => '$content_type'], [CONTENT_LENGTH => '$content_length'],
        [SCRIPT_NAME => '$fastcgi_script_name'], [REQUEST_URI => '$request_uri'],
        [DOCUMENT_URI => '$document_uri'], [DOCUMENT_ROOT => '$document_root'],
        [SERVER_PROTOCOL => '$server_protocol'], [REQUEST_SCHEME => '$scheme'],
        [GATEWAY_INTERFACE => 'CGI/1.1'], [SERVER_SOFTWARE => 'nginx/$nginx_version'],
        [REMOTE_ADDR => '$remote_addr'], [REMOTE_PORT => '$remote_port'],
        [SERVER_ADDR => '$server_addr'], [SERVER_PORT => '$server_port'],
        [SERVER_NAME => '$server_name'], [REDIRECT_STATUS => '200']);
    close $p;
    return $self;
}

package StickyTest::Conn;

# HTTP/1.1 on one connection: each response is read to its end (by
# Content-Length or chunked framing) so the next request follows on the
# same socket. A reset or a stall is a die, with what was read so far.

use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY);

sub new {
    my ($class, $port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 5 * $StickyTest::SLOW)
        or die "connect $port: $!";
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
    return bless { s => $s, buf => '' }, $class;
}

# Sends one request; returns (status, {lowercased header => value}, raw body).
sub request {
    my ($self, $uri, %opt) = @_;
    my $extra = join '', map { "$_: $opt{headers}{$_}\r\n" } sort keys %{ $opt{headers} || {} };
    syswrite $self->{s}, "GET $uri HTTP/1.1\r\nHost: localhost\r\n$extra\r\n"
        or die "write: $!";
    local $SIG{ALRM} = sub { die "timeout reading the response to $uri\n" };
    alarm(($opt{timeout} // 10) * $StickyTest::SLOW);
    my $head = $self->_until(qr/\r\n\r\n/);
    my ($status) = $head =~ m{^HTTP/1\.1 (\d+)} or die "not a response: $head";
    my %h = map { /^([^:]+):\s*(.*)$/ ? (lc $1 => $2) : () } split /\r\n/, $head;
    my $body = '';
    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        while (1) {
            my ($size) = $self->_until(qr/\r\n/) =~ /^([0-9a-fA-F]+)/ or die "bad chunk size";
            $size = hex $size;
            $body .= $self->_take($size) if $size;
            $self->_take(2);
            last if !$size;
        }
    } else {
        $body = $self->_take($h{'content-length'} // 0);
    }
    alarm 0;
    return ($status, \%h, $body);
}

# The buffered bytes up to and including the first match of $re.
sub _until {
    my ($self, $re) = @_;
    until ($self->{buf} =~ $re) { $self->_fill }
    $self->{buf} =~ s/\A(.*?$re)//s;
    return $1;
}

sub _take {
    my ($self, $n) = @_;
    $self->_fill while length $self->{buf} < $n;
    return substr $self->{buf}, 0, $n, '';
}

sub _fill {
    my ($self) = @_;
    my $n = sysread $self->{s}, my $chunk, 65536;
    die(defined $n ? "connection closed by nginx\n" : "connection reset: $!\n") unless $n;
    $self->{buf} .= $chunk;
}

sub close { close $_[0]{s} }

1;
