#!/usr/bin/env bash
# Checks CarbonOutput's lines against a real carbon-cache (Debian's graphite-carbon) on
# loopback: starts one in a temporary directory, runs the test that sends StatAccumInput
# rollups to it over TCP and UDP and reads a value back with whisper-fetch, then stops it.
# Not part of test.sh: it needs `apt-get install graphite-carbon`. Ports: CARBON_PORT_BASE
# (default 22000) + 3 (lines over TCP), + 4 (UDP), + 5 (pickle), + 7 (cache queries).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v carbon-cache >/dev/null; then
    echo "carbon-check: carbon-cache not found; apt-get install graphite-carbon" >&2
    exit 1
fi
base=${CARBON_PORT_BASE:-22000}
dir=$(mktemp -d)
cp /etc/carbon/storage-schemas.conf "$dir/"
cat > "$dir/carbon.conf" <<EOF
[cache]
STORAGE_DIR = $dir/data
LOCAL_DATA_DIR = $dir/data/whisper
WHITELISTS_DIR = $dir/data/lists
CONF_DIR = $dir
LOG_DIR = $dir/log
PID_DIR = $dir
ENABLE_LOGROTATION = False
USER =
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = 500
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = $((base + 3))
ENABLE_UDP_LISTENER = True
UDP_RECEIVER_INTERFACE = 127.0.0.1
UDP_RECEIVER_PORT = $((base + 4))
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = $((base + 5))
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = $((base + 7))
EOF
carbon-cache --config="$dir/carbon.conf" --pidfile="$dir/carbon.pid" --nodaemon start \
    > "$dir/carbon.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$((base + 3))") 2>/dev/null; then
        break
    fi
    sleep 0.2
done
GYGES_CARBON_TCP="127.0.0.1:$((base + 3))" \
GYGES_CARBON_UDP="127.0.0.1:$((base + 4))" \
GYGES_CARBON_WHISPER="$dir/data/whisper" \
    cargo test --lib a_real_carbon_cache_stores_the_rollup -- --nocapture
echo "carbon-check: carbon-cache stored every metric sent over TCP and UDP"
