#!/usr/bin/perl
# Sessions survive what operators do: reordering servers, resizing the zone,
# removing a server (only its sessions move), a full stop and start with
# state= (written atomically, 0600, no raw ids), and a damaged state file
# (logged and ignored, never a refused start).

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of);

my $t = StickyTest->new;
my %servers = map { ($_ => "server 127.0.0.1:%%PORT_B$_%%;") } 1 .. 3;

sub config {
    my (%o) = @_;
    my $order = $o{order} // [1, 2, 3];
    my $zone = $o{zone} // '1m';
    my $servers = join "\n        ", map { $servers{$_} } @$order;
    $t->write_config(<<"CONF");
http {
    access_log off;
    upstream app {
        sticky_session name=sid zone=dur:$zone state=%%TESTDIR%%/sessions.state;
        $servers
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / {
            proxy_pass http://app;
            proxy_next_upstream error timeout;
            add_header X-Sticky \$sticky_session_status always;
        }
    }
    %%BACKENDS(B1,B2,B3)%%
}
CONF
}


# Every session still on its server: returns the ids that are not.
sub moved {
    my ($sessions, %except) = @_;
    my @bad;
    for my $id (sort keys %$sessions) {
        next if $except{ $sessions->{$id} };
        my $r = $t->get("/n?sid=$id");
        push @bad, "$id: $sessions->{$id} -> " . backend_of($r) . ' ' . (StickyTest::header($r, 'X-Sticky') // '')
            unless backend_of($r) eq $sessions->{$id} && StickyTest::header($r, 'X-Sticky') eq 'HIT';
    }
    return \@bad;
}

config();
$t->run;
my %sessions;
for (1 .. 30) {
    my $r = $t->get('/');
    my ($id) = StickyTest::body($r) =~ /sid=(\w+)/;
    $sessions{$id} = backend_of($r);
}
is(scalar(keys %sessions), 30, '30 sessions created');
is_deeply(moved(\%sessions), [], 'all sessions hit their servers');

config(order => [3, 1, 2]);
$t->reload;
is_deeply(moved(\%sessions), [], 'reordering servers and reloading moves no session');

config(order => [3, 1, 2], zone => '2m');
$t->reload;
is_deeply(moved(\%sessions), [], 'a resized zone keeps every session');
like($t->error_log, qr/zone "dur" resized to \d+ sessions, kept 30 of 30/, 'the carry-over is logged');

# Remove b3: only its sessions move (rebound), the others stay.
config(order => [1, 2], zone => '2m');
$t->reload;
is_deeply(moved(\%sessions, b3 => 1), [], 'removing a server keeps the other servers\' sessions');
my @b3 = grep { $sessions{$_} eq 'b3' } keys %sessions;
my %after;
for my $id (@b3) {
    my $r = $t->get("/n?sid=$id");
    $after{ StickyTest::status($r) . ' ' . (StickyTest::header($r, 'X-Sticky') // '') }++;
    $sessions{$id} = backend_of($r);
}
is_deeply(\%after, { '200 REBOUND' => scalar @b3 }, 'the removed server\'s sessions fall back and rebind');
is_deeply(moved(\%sessions), [], 'and then stay on their new servers');

# Full stop and start: the master writes the state file at exit.
$t->stop_nginx;
my $file = $t->dir . '/sessions.state';
ok(-s $file, 'state file written at shutdown');
is((stat $file)[2] & 07777, 0600, 'state file is private (0600)');
my $raw = do { local $/; open my $fh, '<', $file or die; <$fh> };
ok(!(grep { index($raw, $_) >= 0 } keys %sessions), 'state file holds no raw id');
ok(!glob($t->dir . '/sessions.state.tmp*'), 'no temporary file left behind');
$t->run;
is_deeply(moved(\%sessions), [], 'every session survives a stop and start');
like($t->error_log, qr/restored 30 of 30 sessions from ".*sessions\.state"/, 'the restore is logged');

# Damaged files: logged, ignored, nginx starts empty and works.
for my $damage (['truncated', sub { substr($_[0], 0, length($_[0]) - 9) }],
                ['corrupt', sub { my $s = $_[0]; substr($s, 60, 8) = 'XXXXXXXX'; $s }],
                ['foreign', sub { "not a state file at all\n" x 10 }]) {
    my ($what, $mangle) = @$damage;
    $t->stop_nginx;
    my $good = do { local $/; open my $fh, '<', $file or die; <$fh> };
    open my $fh, '>', $file or die;
    print $fh $mangle->($good);
    close $fh;
    $t->run;
    like($t->error_log, qr/state file ".*sessions\.state" ignored, starting empty/, "$what state file: logged and ignored");
    my ($id) = sort keys %sessions;
    is(StickyTest::header($t->get("/n?sid=$id"), 'X-Sticky'), 'MISS', "$what state file: nginx serves, table empty");
    # Rebuild the sessions for the next round.
    %sessions = ();
    for (1 .. 5) {
        my $r = $t->get('/');
        my ($nid) = StickyTest::body($r) =~ /sid=(\w+)/;
        $sessions{$nid} = backend_of($r);
    }
    open my $log, '>', $t->dir . '/logs/error.log';
    close $log;
}

# Whoever can write the state directory (the worker user) must not make the
# master, which writes the file as root at exit, write anywhere else.
my $victim = $t->dir . '/victim';
sub plant {
    my ($how) = @_;
    for my $pid ($t->{pid}, $t->workers) {
        my $name = "$file.tmp.$pid";
        unlink $name;
        if ($how eq 'link') {
            symlink $victim, $name or die "symlink: $!";
        } else {
            open my $fh, '>', $name or die $!;
            print $fh "planted";
            close $fh;
            chmod 0666, $name;
        }
    }
}
for my $how ('link', 'file') {
    open my $fh, '>', $victim or die $!;
    print $fh "precious";
    close $fh;
    plant($how);
    $t->stop_nginx;
    is(do { local $/; open my $v, '<', $victim or die; <$v> }, 'precious',
        "$how planted at every temporary name: nothing written through it");
    ok(-f $file && !-l $file && ((stat $file)[2] & 07777) == 0600,
        "$how planted at every temporary name: the state file is a fresh private file");
    $t->run;
    like($t->error_log, qr/restored \d+ of \d+ sessions/, "$how planted: the state was written and restored");
}

# A FIFO at the state path: nginx starts (no blocking open) and starts empty.
$t->stop_nginx;
unlink $file;
system('mkfifo', $file) == 0 or die "mkfifo failed";
$t->run;
like($t->error_log, qr/state file ".*sessions\.state" ignored, starting empty: not a regular file/,
    'a FIFO at the state path: logged and ignored, nginx starts');

# A link at the state path is never read, and is replaced, not followed, on save.
$t->stop_nginx;
unlink $file;
open my $vf, '>', $victim or die $!;
print $vf "precious";
close $vf;
symlink $victim, $file or die $!;
$t->run;
like($t->error_log, qr/state file ".*sessions\.state" ignored, starting empty: not a regular file/,
    'a link at the state path: logged and ignored');
$t->stop_nginx;
is(do { local $/; open my $v, '<', $victim or die; <$v> }, 'precious', 'the link\'s target is untouched');
ok(-f $file && !-l $file, 'the link was replaced by the state file');
$t->run;

$t->stop;
done_testing;
