#!/usr/bin/perl
# A binary upgrade (USR2, WINCH, QUIT: nginx's way to replace its binary
# or this module without dropping a connection) keeps every session with
# state=. The new nginx reads the state file as it starts, but the old one
# goes on learning: each worker 0 merges the file when the other nginx
# writes it (the old one writes at once when it sees the new one's first
# save, again as its workers stop at WINCH, and its master as it exits),
# and what the new nginx learned meanwhile stays as it is. A rollback (HUP the old master, QUIT the new) brings the new
# nginx's sessions back the same way.
#
# A new build of the module, put in place of the old file, takes effect in
# the upgrade and not at a reload (nginx loads a module path once): the
# "new build" here is the module with one status field renamed.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use StickyTest qw(backend_of sid_of sticky_of wait_for);

my $t = StickyTest->new;
plan skip_all => 'the module is built into nginx: no module file to replace' if $t->{module} eq '';
my $module = $t->dir . '/module.so';
{
    open my $in, '<:raw', $t->{module} or die "$t->{module}: $!";
    local $/;
    my $so = <$in>;
    open my $out, '>:raw', $module or die $!;
    print $out $so;
    close $out or die $!;
    # The next build: the same module, its status page saying LEARN_LIMITED.
    is($so =~ s/learn_limited/LEARN_LIMITED/g, 1, 'one string to tell the builds apart');
    open $out, '>:raw', "$module.next" or die $!;
    print $out $so;
    close $out or die $!;
}
$t->{module} = $module;
$t->write_config(<<'CONF');
http {
    access_log off;
    upstream app {
        sticky_session name=sid zone=upgrade:1m state=%%TESTDIR%%/sessions.state;
        server 127.0.0.1:%%PORT_B1%%;
        server 127.0.0.1:%%PORT_B2%%;
        server 127.0.0.1:%%PORT_B3%%;
    }
    server {
        listen 127.0.0.1:%%PORT_FRONT%%;
        location / {
            proxy_pass http://app;
            add_header X-Sticky $sticky_session_status always;
        }
        location = /status { sticky_session_status; }
    }
    %%BACKENDS(B1,B2,B3)%%
}
CONF
$t->run;
my $file = $t->dir . '/sessions.state';
# Which build answers, by its status page.
sub build {
    my $s = StickyTest::body($t->get('/status'));
    return $s =~ /"LEARN_LIMITED"/ ? 'next' : $s =~ /"learn_limited"/ ? 'first' : 'none';
}
is(build(), 'first', 'the first build runs');

# Worker 0 writes the file (and so the zone's hash key) a second after it
# starts, not only after the first save_every= (30 s here): a new nginx
# started from it hashes ids as this one does.
wait_for('worker 0 wrote the state file right away', sub { -s $file }, 5);

# Ids routed to another server than their own, or not as a hit.
sub astray {
    my ($sessions) = @_;
    return [ grep {
        my $r = $t->get("/n?sid=$_");
        backend_of($r) ne $sessions->{$_} || sticky_of($r) ne 'HIT'
    } sort keys %$sessions ];
}

# `$n` new sessions (each id's server), from whichever nginx answers.
sub sessions {
    my ($n) = @_;
    my %home;
    for (1 .. $n) {
        my $r = $t->get('/');
        $home{ sid_of($r) } = backend_of($r);
    }
    return %home;
}

# USR2 to `$master`: the new master's pid, once it runs.
sub upgrade {
    my ($master, $what) = @_;
    kill 'USR2', $master;
    wait_for($what, sub { -s $t->dir . '/logs/nginx.pid.oldbin' && ($t->read_pid // $master) != $master });
    return $t->read_pid;
}

# `$master`'s workers, not counting `$child` (a new master is the old one's child).
sub workers_of {
    my ($master, $child) = @_;
    local $t->{pid} = $master;
    return grep { $_ != $child } $t->workers;
}

# The next build replaces the file (as a package upgrade does: a new file
# renamed into place). A reload keeps the module loaded; its new worker 0
# writes the file a second later.
my $inode = (stat $file)[1];
rename "$module.next", $module or die $!;
$t->reload;
is(build(), 'first', 'a reload keeps running the loaded build');
wait_for('the reloaded nginx wrote the file', sub { ((stat $file)[1] // $inode) != $inode }, 5);

# Sessions the file does not hold: all lost to an upgrade until now.
my %old = sessions(30);
is(scalar keys %old, 30, '30 sessions learned by the old nginx');
is_deeply(astray(\%old), [], 'they route to their servers');

my $old_master = $t->{pid};
my $new_master = upgrade($old_master, 'the new master started');

# The new nginx writes the file a second after it starts; the old one sees
# that another nginx uses it and writes its own at once, which the new one
# merges: before the old workers stop, not when the old master exits.
wait_for('the new nginx merged the old one\'s 30 sessions while both run',
    sub { $t->error_log =~ /merged 30 of 30 sessions from "\Q$file\E", which another process wrote/ }, 10);

# Sessions learned while both nginx answer, by either (both accept on the
# same sockets).
my %both = sessions(20);

# The old workers stop; the old master stays (to roll back), so only the
# new nginx answers now. It learns sessions of its own.
kill 'WINCH', $old_master;
wait_for('the old workers left', sub { !workers_of($old_master, $new_master) });
is_deeply(astray(\%old), [], 'so the new nginx alone routes every session of the old one');
# The old worker 0 wrote its table once more as it stopped.
wait_for('and, within a second or so, those learned while both answered', sub { !@{ astray(\%both) } }, 5);
my %new = sessions(10);
is(scalar keys %new, 10, '10 sessions learned by the new nginx');

# The old master quits and writes its table once more: merged again, and
# what the new nginx learned meanwhile stays.
kill 'QUIT', $old_master;
wait_for('the old master left', sub { !kill 0, $old_master }, 15);
$t->{pid} = $new_master;
sleep 2;
is_deeply(astray(\%old), [], 'the old nginx\'s sessions route to their servers');
is_deeply(astray(\%new), [], 'the new nginx\'s own sessions are untouched');
is(build(), 'next', 'the upgraded nginx runs the next build');

# The merged table is what the file holds from now on: a full restart
# brings back both nginx's sessions.
$t->stop_nginx;
$t->run;
like($t->error_log, qr/restored 60 of 60 sessions/, 'a restart restores all 60');
is_deeply(astray({ %old, %both, %new }), [], 'and every one routes to its server');

# A rollback: after USR2 and WINCH the old master is told to start its
# workers again (HUP) and the new one quits. What the new nginx learned
# during the trial comes back to the old one the same way.
my $kept = $t->{pid};
my $trial = upgrade($kept, 'a second upgrade started');
kill 'WINCH', $kept;
wait_for('the kept master\'s workers left', sub { !workers_of($kept, $trial) });
my %tried = sessions(10);
kill 'HUP', $kept;
wait_for('the kept master has workers again', sub { scalar workers_of($kept, $trial) });
kill 'QUIT', $trial;
wait_for('the trial master left', sub { !kill 0, $trial }, 15);
$t->{pid} = $kept;
wait_for('the rolled back nginx routes the trial\'s sessions', sub { !@{ astray(\%tried) } }, 10);
is_deeply(astray({ %old, %both, %new }), [], 'and every earlier one');

# A file of another zone (another hash key) put in its place is refused,
# logged once, and changes nothing.
my $other = StickyTest->new;
$other->write_config(<<'CONF');
http {
    access_log off;
    upstream app {
        sticky_session name=sid zone=other:1m state=%%TESTDIR%%/other.state save_every=1s;
        server 127.0.0.1:%%PORT_B1%%;
    }
    server { listen 127.0.0.1:%%PORT_FRONT%%; location / { proxy_pass http://app; } }
    %%BACKENDS(B1)%%
}
CONF
$other->run;
my $foreign = $other->dir . '/other.state';
wait_for('another zone wrote its file', sub { -s $foreign }, 5);
$other->stop;
rename $foreign, "$file.planted" or die $!;
rename "$file.planted", $file or die $!;
wait_for('the foreign file was looked at', sub { $t->error_log =~ /not merged: .*another hash key/ }, 10);
sleep 2;
my @refusals = $t->error_log =~ /not merged: .*another hash key/g;
is(scalar @refusals, 1, 'refused once, not every second');
is_deeply(astray({ %old, %both, %new, %tried }), [], 'no session moved');
$t->stop;
done_testing;
