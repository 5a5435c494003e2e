#!/usr/bin/env bash
# Soak and overload (docs/soak.md): runs the soak tests of tests/soak.rs in their long form
# (GYGES_SOAK=long) or, with --short, in the short form CI runs, and summarises them.
#
#   scripts/soak.sh                  the long form: 10 kill -9s on each durable route, 2 × 10
#                                    minutes of overload against a stalling destination,
#                                    10 000 idle + 500 slow-loris connections, a disk that fills
#   scripts/soak.sh --short          the short form (about a minute with the build done)
#   scripts/soak.sh --out FILE       also write the summary (markdown) to FILE
#   scripts/soak.sh -- NAME          only the soak tests whose name contains NAME
#
#   SOAK_PROFILE     cargo profile of the build under test: `release` (default with the long
#                    form) or `test` (what `cargo test` builds: the default with --short)
#   SOAK_TIMEOUT     seconds the whole run may take before it is stopped (default 3600 long,
#                    600 short): the run is bounded even if a test hangs
#
# Runs as root for the disk-full part (it mounts a 16 MiB tmpfs; skipped and said so
# otherwise). Needs `ulimit -n` of 11 000 or more for the long form's idle connections: the
# test process and the daemon each hold one end of every connection; it raises the soft limit
# to the hard one and refuses to start when that is too low.
# Exits non-zero when a soak property fails (the test's assertion message says which).
set -euo pipefail
cd "$(dirname "$0")/.."

form=long
out=""
filter=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --short) form=short ;;
        --out) out="$2"; shift ;;
        --) filter="${2:-}"; shift $(( $# > 1 ? 1 : 0 )) ;;
        *) echo "usage: scripts/soak.sh [--short] [--out FILE] [-- NAME]" >&2; exit 2 ;;
    esac
    shift
done

if [[ "$form" == long ]]; then
    profile="${SOAK_PROFILE:-release}"
    timeout_s="${SOAK_TIMEOUT:-3600}"
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    if (( $(ulimit -n) < 11000 )); then
        echo "soak: ulimit -n is $(ulimit -n); the long form needs 11000 (raise the hard limit)" >&2
        exit 2
    fi
else
    profile="${SOAK_PROFILE:-test}"
    timeout_s="${SOAK_TIMEOUT:-600}"
fi

log="$(mktemp -t gyges-soak.XXXXXX.log)"
started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "soak: $form form, profile $profile, at most $timeout_s s; log in $log" >&2
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo test --profile "$profile" --test tests --no-run >&2
status=0
GYGES_SOAK="$form" timeout --signal=TERM --kill-after=30 "$timeout_s" \
    cargo test --profile "$profile" --test tests "soak::${filter}" -- --nocapture --test-threads=1 \
    >"$log" 2>&1 || status=$?
finished="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

summary() {
    echo "# Soak and overload, $form form"
    echo
    echo "- run: $started to $finished, \`scripts/soak.sh$([[ $form == short ]] && echo ' --short')\`, profile \`$profile\`"
    echo "- machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(uname -r), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo
    echo "| part | result |"
    echo "|---|---|"
    sed -n 's/^.*SOAK \([^|]*\)| \(.*\)$/| \1| \2 |/p' "$log"
    echo
    grep -E '^test result:' "$log" | sed 's/^/    /' || true
    if [[ $status -ne 0 ]]; then
        echo
        echo "**Failed** (exit status $status); the failing assertions:"
        echo
        grep -E "panicked at|^thread '" -A3 "$log" | head -40 | sed 's/^/    /'
    fi
}

summary | tee ${out:+"$out"}
exit "$status"
