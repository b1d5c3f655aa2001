#!/usr/bin/perl
# Quartermaster's post-receive hook, installed by the ensureGitRepo activity (activities/git) as
# /srv/qm/git/post-receive and linked from every platform repository's hooks/post-receive.
# Perl with core modules only, so it needs nothing a Git server does not already have.
#
# For every branch a push moved, it tells the platform: POST <url> with a JSON body
#   {"repo": "customers/acme.git", "ref": "refs/heads/main", "before": <40 hex>, "after": <40 hex>,
#    "pusher": "...", "pushedAt": "<ISO time>"}
# signed like every request to the platform (api/signature.ts):
#   X-QM-Timestamp: <unix seconds>
#   X-QM-Nonce: <32 hex, new for every attempt>
#   X-QM-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<nonce>.POST <path>\n<body>")>
# where <path> is the URL's path (and query) exactly as sent.
#
# A notification is never lost silently: it is first written to the spool (/srv/qm/git/spool), then
# delivered and removed. What cannot be delivered within a few seconds stays spooled, the pusher is
# told on stderr ("remote: qm: ..."), and a detached retrier keeps trying (with backoff, for about
# an hour; the next push retries too). The platform deduplicates (one deploy per site and commit),
# so delivering one twice is harmless. Logs: /srv/qm/git/deliver.log.
#
# Files (written by ensureGitRepo): hook.json {"url", "gitRoot"} and hook.secret (mode 0600, read
# by the account that runs the hooks; never on a command line).
#
# Usage: post-receive (stdin: "<old> <new> <ref>" lines, as git gives them)
#        post-receive --retry   (the detached retrier; also fine to run by hand or from cron)
use strict;
use warnings;
use Cwd qw(getcwd);
use Digest::SHA qw(hmac_sha256_hex);
use Fcntl qw(:flock);
use HTTP::Tiny;
use POSIX qw(setsid strftime);

# QM_GIT_HOOK_DIR: only for the hook's own tests (sshd passes no client environment to git).
my $DIR = $ENV{QM_GIT_HOOK_DIR} // '/srv/qm/git';
my $SPOOL = "$DIR/spool";
my $FAILED = "$DIR/failed";
my $LOG = "$DIR/deliver.log";

sub say_pusher { print STDERR "qm: $_[0]\n"; }

sub logline {
  if (open(my $fh, '>>', $LOG)) {
    print $fh strftime('%Y-%m-%dT%H:%M:%SZ', gmtime) . " [$$] $_[0]\n";
    close $fh;
  }
}

sub slurp {
  my ($path) = @_;
  open(my $fh, '<', $path) or return undef;
  local $/;
  my $text = <$fh>;
  close $fh;
  return $text;
}

sub json_string {
  my ($s) = @_;
  $s =~ s/(["\\])/\\$1/g;
  $s =~ s/([\x00-\x1f])/sprintf('\\u%04x', ord($1))/ge;
  return "\"$s\"";
}

sub config {
  my $json = slurp("$DIR/hook.json") // die "no $DIR/hook.json (run ensureGitRepo)\n";
  my ($url) = $json =~ /"url"\s*:\s*"([^"]+)"/;
  my ($root) = $json =~ /"gitRoot"\s*:\s*"([^"]+)"/;
  my $secret = slurp("$DIR/hook.secret") // die "cannot read $DIR/hook.secret\n";
  $secret =~ s/\s+\z//;
  die "$DIR/hook.json has no url\n" unless $url;
  return ($url, $root // '/srv/git', $secret);
}

# Write every moved branch to the spool first (atomically: a temporary name, then rename).
sub spool_push {
  my ($root) = @_;
  my $cwd = getcwd();
  (my $repo = $cwd) =~ s{^\Q$root\E/}{};
  my $pusher = $ENV{QM_PUSHER} // $ENV{USER} // getpwuid($<) // 'unknown';
  my $n = 0;
  my @written;
  while (my $line = <STDIN>) {
    chomp $line;
    my ($old, $new, $ref) = split / /, $line, 3;
    next unless defined $ref && $ref =~ m{^refs/heads/} && $new =~ /^[0-9a-f]{40}$/;
    next if $new =~ /^0{40}$/;    # a deleted branch deploys nothing
    my $body = '{' . join(',',
      '"repo":' . json_string($repo),
      '"ref":' . json_string($ref),
      '"before":' . json_string($old),
      '"after":' . json_string($new),
      '"pusher":' . json_string($pusher),
      '"pushedAt":' . json_string(strftime('%Y-%m-%dT%H:%M:%SZ', gmtime))) . '}';
    my $name = sprintf('%d-%06d-%d', time, $$, $n++);
    open(my $fh, '>', "$SPOOL/.$name.tmp") or die "cannot write to $SPOOL: $!\n";
    print $fh $body;
    close $fh or die "cannot write to $SPOOL: $!\n";
    rename("$SPOOL/.$name.tmp", "$SPOOL/$name.json") or die "cannot spool: $!\n";
    push @written, $name;
  }
  return @written;
}

# A nonce for one delivery attempt: the platform accepts a nonce once, so every attempt (a retry
# within the same second too) is a request of its own; the platform deduplicates the deploys.
sub nonce {
  open(my $fh, '<:raw', '/dev/urandom') or die "qm: cannot read /dev/urandom: $!\n";
  read($fh, my $bytes, 16) == 16 or die "qm: short read from /dev/urandom\n";
  close $fh;
  return unpack('H*', $bytes);
}

# Deliver what is spooled, oldest first. Returns how many are left and the last error.
sub deliver {
  my ($url, $secret, $timeout, $quiet) = @_;
  my ($path) = $url =~ m{^https?://[^/?#]+([^#]*)};
  $path = '/' unless defined $path && length $path;
  $path = "/$path" if $path =~ /^\?/;
  my $http = HTTP::Tiny->new(timeout => $timeout, agent => 'quartermaster-git-hook/1');
  opendir(my $dh, $SPOOL) or return (0, "cannot read $SPOOL");
  my @files = sort grep { /^\d+-\d+-\d+\.json$/ } readdir($dh);
  closedir $dh;
  my ($left, $error) = (0, '');
  for my $i (0 .. $#files) {
    my $file = $files[$i];
    my $body = slurp("$SPOOL/$file");
    next unless defined $body;    # delivered by another process meanwhile
    my $ts = time;
    my $nonce = nonce();
    my $res = $http->request('POST', $url, {
      content => $body,
      headers => {
        'content-type' => 'application/json',
        'accept' => 'text/plain',
        'x-qm-timestamp' => "$ts",
        'x-qm-nonce' => $nonce,
        'x-qm-signature' => 'v1=' . hmac_sha256_hex("$ts.$nonce.POST $path\n$body", $secret),
      },
    });
    if ($res->{success}) {
      unlink "$SPOOL/$file";
      logline("delivered $file: $res->{status}");
      print STDERR map { "qm: $_\n" } grep { length } split /\n/, ($res->{content} // '') unless $quiet;
    } elsif ($res->{status} >= 400 && $res->{status} < 500 && $res->{status} != 429) {
      # the platform refused it (bad signature, bad body): retrying cannot help; kept for ops
      rename("$SPOOL/$file", "$FAILED/$file");
      logline("REFUSED $file: $res->{status} $res->{content}");
      say_pusher("the platform REFUSED the notification ($res->{status}): kept in $FAILED/$file");
    } else {
      $error = $res->{status} == 599 ? ($res->{content} // 'no answer') : "$res->{status} $res->{reason}";
      $error =~ s/\s+\z//;
      $left = @files - $i;
      logline("not delivered $file: $error");
      last;
    }
  }
  return ($left, $error);
}

# The detached retrier: one at a time (a lock), backing off up to 60 s, for about an hour.
sub retry_loop {
  my ($url, $secret) = @_;
  open(my $lock, '>', "$DIR/retry.lock") or exit 0;
  flock($lock, LOCK_EX | LOCK_NB) or exit 0;    # another retrier is on it
  my $wait = 2;
  my $until = time + 3600;
  while (time < $until) {
    sleep $wait;
    my ($left, $error) = deliver($url, $secret, 10, 1);
    return if !$left;
    $wait = $wait * 2 > 60 ? 60 : $wait * 2;
  }
  logline('retrier gave up after an hour; the next push (or post-receive --retry) retries');
}

sub start_retrier {
  my $pid = fork();
  return unless defined $pid && $pid == 0;
  setsid();
  open(STDIN, '<', '/dev/null');
  open(STDOUT, '>>', $LOG);
  open(STDERR, '>>', $LOG);
  exec($^X, $0, '--retry') or exit 1;
}

my ($url, $root, $secret) = eval { config() };
if (!$url) {
  say_pusher("NOT notifying the platform of this push: $@");
  exit 0;    # the push itself went through; ops must fix the hook's set-up
}

if (@ARGV && $ARGV[0] eq '--retry') {
  retry_loop($url, $secret);
  exit 0;
}

my @spooled = eval { spool_push($root) };
if ($@) {
  say_pusher("NOT notifying the platform of this push: $@");
  exit 0;
}
exit 0 unless @spooled;
my ($left, $error) = deliver($url, $secret, 5, 0);
if ($left) {
  say_pusher("the platform did not take the notification yet ($error); $left kept in $SPOOL, retrying in the background");
  start_retrier();
}
exit 0;
