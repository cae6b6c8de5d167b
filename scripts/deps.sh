#!/usr/bin/env bash
# Installs the Debian 12 packages the build, the demo and the tests need, when missing.
# Sourced by demo.sh and test.sh; needs root (or sudo) only when something is missing.
set -euo pipefail

MZB_PACKAGES=(
    build-essential cmake pkg-config
    libzmq3-dev libjansson-dev libcmocka-dev libsqlite3-dev
    mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev
    python3-zmq python3-paho-mqtt sqlite3
)

mzb_missing_packages() {
    local pkg
    for pkg in "${MZB_PACKAGES[@]}" "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            printf '%s\n' "$pkg"
        fi
    done
}

mzb_install_deps() {
    local missing
    missing=$(mzb_missing_packages "$@")
    [ -z "$missing" ] && return 0

    echo "Installing missing Debian packages: $(echo $missing)"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    # Debian's mosquitto package would start a system broker on 1883 where an init system
    # runs; the demo brings its own, so keep the packaged one from starting.
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
}
