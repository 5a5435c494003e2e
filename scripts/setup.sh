#!/usr/bin/env bash
# Installs the system packages gyges needs to build and test. Idempotent: a package that is
# already installed is not asked for again, and apt is not touched when nothing is missing.
#
#   lua-lpeg-dev   Debian's static lpeg (liblua5.4-lpeg.a), linked into the Lua sandbox.
#   logrotate      rotates files under LogstreamerInput in its end-to-end tests (tests/logstreamer.rs).
set -euo pipefail

packages=(lua-lpeg-dev logrotate)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup: all packages present (${packages[*]})"
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
