#!/usr/bin/env bash
# Unpacks Debian's rsyslog into a scratch folder for the side-by-side row of `cargo bench`
# (bench/e2e.rs), without installing it: no service is started, the system's syslog is not
# touched, and nothing conflicts with a syslog daemon already installed (rsyslog and
# syslog-ng-core both provide system-log-daemon).
#
#   scripts/install-rsyslog.sh [DIR]        default DIR: target/rsyslog
#
# The packages are fetched with `apt-get download` and unpacked with `dpkg -x`: rsyslog itself
# and those of its libraries that are not installed on the machine. The bench finds
#   DIR/usr/sbin/rsyslogd, its modules in DIR/usr/lib/<multiarch>/rsyslog,
# and runs it with LD_LIBRARY_PATH naming DIR's library folders. Idempotent: a folder that
# already holds rsyslogd is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${1:-target/rsyslog}"
if [ -x "$dir/usr/sbin/rsyslogd" ]; then
    echo "install-rsyslog: $dir/usr/sbin/rsyslogd is already there"
    exit 0
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
    echo "install-rsyslog: needs apt-get and dpkg (Debian, Ubuntu); the bench skips rsyslog" >&2
    exit 1
fi

# rsyslog, then the libraries it needs that a minimal Debian may lack.
packages=(rsyslog)
for library in libestr0 libfastjson4 liblognorm5; do
    if ! dpkg-query -W -f='${Status}' "$library" 2>/dev/null | grep -q "install ok installed"; then
        packages+=("$library")
    fi
done

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
if ! (cd "$scratch" && apt-get download -q "${packages[@]}" >/dev/null 2>&1); then
    # The package lists may be missing or stale on a fresh machine.
    apt-get update -qq
    (cd "$scratch" && apt-get download -q "${packages[@]}")
fi
mkdir -p "$dir"
for deb in "$scratch"/*.deb; do
    dpkg -x "$deb" "$dir"
done
libraries="$(find "$dir" -name 'lib*.so*' -printf '%h\n' | sort -u | paste -sd:)"
LD_LIBRARY_PATH="$libraries" "$dir/usr/sbin/rsyslogd" -v | head -1
echo "install-rsyslog: unpacked ${packages[*]} into $dir"
