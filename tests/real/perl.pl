# perl.pl: hashes, arrays of hashes, sorting and string building, for
# tests/real/perl.sh.  The numbers it prints are in perl.expected.
use strict;
use warnings;

my %h;
for my $i (0 .. 999_999) { $h{"key$i"} = $i * 3; }
delete $h{"key$_"} for grep { $_ % 3 == 0 } 0 .. 999_999;
my $n = scalar keys %h;
my $sum = 0;
$sum += $_ for values %h;
my @sorted = sort keys %h;
print "hash $n $sum $sorted[0] $sorted[-1] $sorted[123456]\n";

my %groups;
for my $k (keys %h) {
    my ($d) = $k =~ /(\d)$/;
    push @{ $groups{$d} }, $h{$k};
}
print "groups ", join(",", map { scalar @{ $groups{$_} } } sort keys %groups), "\n";

my @nums = sort { $a <=> $b } map { ($_ * 7919) % 1000003 } 1 .. 500_000;
print "nums $nums[0] $nums[250000] $nums[-1]\n";

my $s = "";
$s .= chr(97 + $_ % 26) x ($_ % 7) for 1 .. 200_000;
my %cnt;
$cnt{$_}++ for split //, $s;
print "str ", length($s), " $cnt{a} $cnt{z}\n";

my @aoh = map { { id => $_, name => "n$_", tags => [ ($_) x ($_ % 4) ] } } 1 .. 200_000;
my $tags = 0;
$tags += @{ $_->{tags} } for @aoh;
my @by = sort { $b->{name} cmp $a->{name} || $a->{id} <=> $b->{id} } @aoh;
print "aoh $tags $by[0]{id} $by[-1]{id}\n";
