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
# Backends: the C libraries (headers + pkg-config files) and the kernel tools the tests drive.
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
dpkg -s libpcap-dev       >/dev/null 2>&1 || need+=(libpcap-dev)
dpkg -s libnl-3-dev       >/dev/null 2>&1 || need+=(libnl-3-dev)
dpkg -s libnl-route-3-dev >/dev/null 2>&1 || need+=(libnl-route-3-dev)
dpkg -s libnl-nf-3-dev    >/dev/null 2>&1 || need+=(libnl-nf-3-dev)
command -v ip       >/dev/null 2>&1 || need+=(iproute2)
command -v ping     >/dev/null 2>&1 || need+=(iputils-ping)
command -v nft      >/dev/null 2>&1 || need+=(nftables)
command -v conntrack >/dev/null 2>&1 || need+=(conntrack)
command -v tcpreplay >/dev/null 2>&1 || need+=(tcpreplay)
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
