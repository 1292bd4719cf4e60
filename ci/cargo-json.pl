#!/usr/bin/perl
# Reads cargo's JSON output, the one way the ci/ scripts do.
#   cargo metadata --format-version 1 | ci/cargo-json.pl package-dir NAME
#       the directory of package NAME's Cargo.toml
#   cargo build --message-format=json-render-diagnostics | ci/cargo-json.pl artifacts
#       two lines: nginx-sys's build script OUT_DIR, and our cdylib's path
use strict;
use warnings;
use JSON::PP qw(decode_json);

my $what = shift // die "usage: cargo-json.pl package-dir NAME | artifacts\n";
if ($what eq 'package-dir') {
    my $name = shift // die "package-dir needs a package name\n";
    local $/;
    my $meta = decode_json(<STDIN>);
    for my $p (@{ $meta->{packages} }) {
        next unless $p->{name} eq $name;
        (my $dir = $p->{manifest_path}) =~ s{/Cargo\.toml$}{};
        print "$dir\n";
        exit 0;
    }
    die "package $name not in cargo metadata\n";
} elsif ($what eq 'artifacts') {
    my ($out_dir, $lib);
    while (my $line = <STDIN>) {
        next unless $line =~ /^\{/;
        my $m = eval { decode_json($line) } or next;
        my $reason = $m->{reason} // '';
        if ($reason eq 'build-script-executed' && $m->{package_id} =~ /nginx-sys/) {
            $out_dir = $m->{out_dir};
        } elsif ($reason eq 'compiler-artifact' && $m->{target}{name} eq 'sticky_session') {
            ($lib) = grep { /libsticky_session\.so$/ } @{ $m->{filenames} };
        }
    }
    die "cargo-json: no nginx-sys build or sticky_session cdylib in cargo's output\n"
        unless $out_dir && $lib;
    print "$out_dir\n$lib\n";
} else {
    die "cargo-json: unknown request $what\n";
}
