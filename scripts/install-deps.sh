#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine (run as root). Idempotent: does
# nothing when everything is present.
set -euo pipefail
need=()
command -v tshark   >/dev/null 2>&1 || need+=(tshark)
command -v capinfos >/dev/null 2>&1 || need+=(wireshark-common)
command -v tcpdump  >/dev/null 2>&1 || need+=(tcpdump)
command -v cc       >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v python3  >/dev/null 2>&1 || need+=(python3)
command -v gzip     >/dev/null 2>&1 || need+=(gzip)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: missing ${need[*]}; run as root or install them" >&2
        exit 1
    fi
    echo "install-deps: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
command -v swift >/dev/null 2>&1 || { echo "install-deps: swift not found (expected at /opt/swift/usr/bin)" >&2; exit 1; }
