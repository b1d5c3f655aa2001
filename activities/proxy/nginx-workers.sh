# shellcheck shell=sh
# A fragment, not a script: shell functions for the nginx master `$pid`, included (as text, by
# activities/ssh/remoteScript.ts) where apply-change.sh and in-flight.sh name it.
#   workers   its workers' pids: the kernel's list (one read, no scan of /proc), else pgrep
#   told W    whether worker W has been told to shut down (its title says so; it exits once the
#             requests it holds are answered)
# shellcheck disable=SC2154  # $pid: set by the script that includes this

workers() { cat "/proc/$pid/task/$pid/children" 2>/dev/null || pgrep -P "$pid" | tr '\n' ' '; }
told() { grep -qa 'shutting down' "/proc/$1/cmdline" 2>/dev/null; }
