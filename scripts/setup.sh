#!/usr/bin/env bash
# Installs the system packages gyges needs to build and test. Idempotent: a package that is
# already installed is not asked for again, and apt is not touched when nothing is missing.
#
#   lua-lpeg-dev   Debian's static lpeg (liblua5.4-lpeg.a), linked into the Lua sandbox.
#   curl           a real HTTP client for the HttpListenInput tests (tests/http_listen.rs).
#   python3        its http.client is the other real HTTP client of those tests.
#   openssl        the CLI: tests/tls.rs and bench case 4t make certificates with it, and
#                  `openssl s_client` is the TLS client of the TLS input test.
#   socat          terminates TLS in front of tansu (whose own TLS does not work) for the Kafka
#                  TLS test (tests/kafka.rs).
#   logrotate      rotates files under LogstreamerInput in its end-to-end tests (tests/logstreamer.rs).
#   ca-certificates the system's CA bundle: SmtpOutput verifies STARTTLS servers against it
#                  when no tls.root_cafile is given (tests/smtp.rs checks a server it does not know
#                  is refused).
#   tzdata         the system zoneinfo that `tz` on decoders reads (/usr/share/zoneinfo).
#   chromium       a real browser, headless, that loads the dashboard page in tests/dashboard.rs
#                  and takes docs/images/dashboard.png.
#   cmake, libssl-dev, zlib1g-dev, libzstd-dev, libcurl4-openssl-dev
#                  build librdkafka from the sources the rdkafka crate vendors (KafkaInput,
#                  KafkaOutput; docs/kafka.md says why not Debian's librdkafka): cmake drives the
#                  build; TLS, gzip and zstd compression; curl only because librdkafka 2.12 built
#                  with TLS does not compile without it.
#   rabbitmq-server the AMQP broker of the AMQPInput/AMQPOutput tests (tests/amqp.rs), which
#                  start their own node on loopback; installed only, never started as a service.
#
# Python packages (pip, for the end-to-end tests' real clients):
#   fluent-logger  sends Fluentd Forward protocol events to FluentForwardInput (tests/fluent.rs).
#   msgpack        writes the Forward protocol fixtures (tests/fixtures/fluent/make_fixtures.py).
#   prometheus-client  its parser checks that /metrics is valid text exposition (tests/ops.rs).
#
# Then, for the tests that run real peers: rsyslog, unpacked (not installed) into
# target/rsyslog by scripts/install-rsyslog.sh (the syslog tests' omfwd sender and the bench's
# side-by-side rows); and tansu, a Kafka-compatible broker (in-memory storage), copied into
# target/tansu by scripts/install-tansu.sh for the Kafka tests and bench, which start and stop
# it on loopback themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

python_packages=(fluent-logger msgpack prometheus-client)
python_modules=(fluent msgpack prometheus_client)

install_python_packages() {
    local missing_python=()
    local index
    for index in "${!python_packages[@]}"; do
        if ! python3 -c "import ${python_modules[$index]}" 2>/dev/null; then
            missing_python+=("${python_packages[$index]}")
        fi
    done
    if [ "${#missing_python[@]}" -eq 0 ]; then
        echo "setup: all python packages present (${python_packages[*]})"
        return
    fi
    echo "setup: pip installing ${missing_python[*]}"
    python3 -m pip install --quiet --disable-pip-version-check "${missing_python[@]}"
}

packages=(lua-lpeg-dev openssl ca-certificates curl python3 socat logrotate tzdata chromium
    cmake libssl-dev zlib1g-dev libzstd-dev libcurl4-openssl-dev rabbitmq-server)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup: all packages present (${packages[*]})"
else
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "setup: installing ${missing[*]}"
    # rabbitmq-server must not run as a service: while it installs, a policy-rc.d (unless the
    # machine has one already) tells the package scripts not to start it.
    policy=/usr/sbin/policy-rc.d
    placed_policy=""
    if [[ " ${missing[*]} " == *" rabbitmq-server "* ]] && [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod 755 "$policy"
        placed_policy=1
    fi
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    if [ -n "$placed_policy" ]; then
        $sudo rm -f "$policy"
    fi
fi

install_python_packages
scripts/install-rsyslog.sh
scripts/install-tansu.sh
