#!/bin/bash
# compare-live.sh - live capture on a veth: PodTap's AFPacketSource (1 and 2 fanout threads) and
# PcapLiveSource against netsniff-ng, tcpdump and the TPACKET_V3 reference reader (bench/limit/tpv3.c),
# in one run, under the same senders. Prints one markdown table.
#
# usage (root): Benchmarks/compare-live.sh [-d SECONDS] [-p PCAP] [-c CAPTURERS] [-s SENDERS] [-n]
#   -d SECONDS    blast duration per run (default 10)
#   -p PCAP       capture replayed by the tcpreplay sender (default: a genpcap capture made here)
#   -c CAPTURERS  comma list from: none, podtap-afpacket, podtap-afpacket2, podtap-pcap,
#                 netsniff-ng, tcpdump, tpv3 (default: all)
#   -s SENDERS    comma list from: trafgen (64-byte UDP, 1 process), trafgen2 (2 processes),
#                 tcpreplay (--topspeed of PCAP) (default: trafgen2,trafgen,tcpreplay)
#   -n            PodTap captures without decoding and tracking (raw capture cost only)
#   -h            this help
#
# Topology (as ../shared/bench/live/live-capture.sh): a veth pair between the root namespace and
# a namespace this script creates; the sender runs inside the namespace, the capturer on the
# host end. The host end has no address, IPv6 off, ARP off; frames carry a foreign destination
# MAC and TTL 1, so nothing leaves the pair. Everything created is removed on exit.
# On a veth the capturer's cost shows up mostly as a lower send rate (sender and capturer share
# the 2 cores), so the table reports, for each capturer: packets sent and the send rate, packets
# that arrived at the veth, packets the capturer saw, the drops it reported, and its CPU
# seconds (user+sys, all threads, from /proc/PID/stat during the blast) per million packets seen.
# PodTap decodes every packet and tracks flows (FlowTracker) unless -n is given.
set -euo pipefail
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

DUR=10
PCAP=""
CAPS=none,podtap-afpacket,podtap-afpacket2,podtap-pcap,netsniff-ng,tcpdump,tpv3
SENDERS=trafgen2,trafgen,tcpreplay
NOTRACK=""
while getopts "d:p:c:s:nh" o; do
    case $o in
    d) DUR=$OPTARG ;; p) PCAP=$OPTARG ;; c) CAPS=$OPTARG ;; s) SENDERS=$OPTARG ;; n) NOTRACK=--no-track ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "compare-live: run as root (namespaces, veth, AF_PACKET)" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${PODTAP_SHARED:-$ROOT/../shared}
BENCH=$SHARED/bench
[ -d /opt/swift/usr/bin ] && PATH=/opt/swift/usr/bin:$PATH
log() { echo "compare-live: $*" >&2; }

# --- tools -------------------------------------------------------------------------------------
need=()
command -v trafgen >/dev/null 2>&1 || need+=(netsniff-ng)
command -v tcpreplay >/dev/null 2>&1 || need+=(tcpreplay)
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
CBIN=$HERE/.build/bench-bin
mkdir -p "$CBIN"
for t in tpv3 genpcap; do
    src=$BENCH/limit/$t.c; [ $t = genpcap ] && src=$BENCH/gen/genpcap.c
    if [ ! -x "$CBIN/$t" ] || [ "$src" -nt "$CBIN/$t" ]; then cc -O2 -Wall -o "$CBIN/$t" "$src" -lm; fi
done
log "building podtap-live (release)"
(cd "$HERE" && swift build -c release --product podtap-live >&2) || { log "swift build failed"; exit 1; }
PODTAP=$(cd "$HERE" && swift build -c release --show-bin-path)/podtap-live

NS=ptlive$$
HV=ptlh$$; NV=ptln$$
HV=${HV:0:15}; NV=${NV:0:15}
WORK=$(mktemp -d /tmp/compare-live.XXXXXX)
CAPPID=""
cleanup() {
    [ -n "$CAPPID" ] && kill -KILL "$CAPPID" 2>/dev/null || true
    ip link del "$HV" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

if [ -z "$PCAP" ]; then
    PCAP=$WORK/replay.pcap
    "$CBIN/genpcap" -n 100000 -f 2500 -s 7 -o "$PCAP" >/dev/null
fi

[ "$(cat /proc/sys/net/ipv4/ip_forward)" = 0 ] || { log "refusing to run: net.ipv4.ip_forward=1"; exit 1; }
ip netns add "$NS"
ip link add "$HV" type veth peer name "$NV" netns "$NS"
sysctl -qw "net.ipv6.conf.$HV.disable_ipv6=1"
ip link set "$HV" arp off
ip link set "$HV" up
ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec "$NS" ip addr add 10.250.0.2/30 dev "$NV"
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip link set "$NV" up
NVMAC=$(ip netns exec "$NS" cat "/sys/class/net/$NV/address")
sleep 1
cat > "$WORK/udp64.cfg" <<CFG
{ eth(da=02:00:00:00:00:01, sa=$NVMAC, type=0x0800),
  ipv4(sa=10.250.0.2, da=10.250.0.1, ttl=1),
  udp(sp=dinc(1024, 65000), dp=9),
  fill(0x41, 18) }
CFG

TICK=$(getconf CLK_TCK)
hv_rx() { cat "/sys/class/net/$HV/statistics/rx_packets"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

start_cap() {
    case $1 in
    podtap-afpacket) "$PODTAP" afpacket "$HV" 1 $NOTRACK > "$WORK/cap.out" 2>&1 & ;;
    podtap-afpacket2) "$PODTAP" afpacket "$HV" 2 $NOTRACK > "$WORK/cap.out" 2>&1 & ;;
    podtap-pcap) "$PODTAP" pcap "$HV" 1 $NOTRACK > "$WORK/cap.out" 2>&1 & ;;
    tcpdump) tcpdump -i "$HV" -w /dev/null > "$WORK/cap.out" 2>&1 & ;;
    netsniff-ng) netsniff-ng --in "$HV" --out /dev/null --silent > "$WORK/cap.out" 2>&1 & ;;
    tpv3) "$CBIN/tpv3" -i "$HV" -t $((DUR + 600)) > "$WORK/cap.out" 2>&1 & ;;
    none) echo "none ready" > "$WORK/cap.out"; sleep "$((DUR + 600))" & ;;
    *) log "unknown capturer $1"; exit 2 ;;
    esac
    CAPPID=$!
    local pat
    case $1 in podtap-*) pat='podtap ready' ;; tcpdump) pat='listening on' ;; netsniff-ng) pat='Running!' ;; tpv3) pat='tpv3 ready' ;; none) pat='none ready' ;; esac
    for _ in $(seq 600); do grep -q "$pat" "$WORK/cap.out" 2>/dev/null && break; sleep 0.1; done
    grep -q "$pat" "$WORK/cap.out" || { log "$1 did not start:"; cat "$WORK/cap.out" >&2; exit 1; }
    sleep 1
}
# Whether PID is still running (an exited child stays a zombie until waited for).
running() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }
stop_cap() {
    if [ "$1" = none ]; then kill -TERM "$CAPPID" 2>/dev/null || true; else kill -INT "$CAPPID" 2>/dev/null || true; fi
    # A capturer that ignores SIGINT for 10 s is killed (its row then shows no summary)
    # rather than stalling the whole run.
    for _ in $(seq 100); do running "$CAPPID" || break; sleep 0.1; done
    if running "$CAPPID"; then
        log "capturer $1 did not stop within 10 s of SIGINT; killing it"
        kill -KILL "$CAPPID" 2>/dev/null || true
    fi
    wait "$CAPPID" 2>/dev/null || true
    CAPPID=""
}
cap_summary() { # -> "seen drops"
    case $1 in
    podtap-*) sed -n 's/^podtap seen=\([0-9]*\) kernel_drops=\([0-9]*\).*/\1 \2/p' "$WORK/cap.out" ;;
    tcpdump) awk '/packets captured/{c=$1} /dropped by kernel/{d=$1} END{print c+0, d+0}' "$WORK/cap.out" ;;
    netsniff-ng) tr -d '\r' < "$WORK/cap.out" | awk '/packets passed filter/{p=$1} /failed filter/{f=$1} END{print p+0, f+0}' ;;
    tpv3) sed -n 's/.* seen=\([0-9]*\).*kernel_drops=\([0-9]*\).*/\1 \2/p' "$WORK/cap.out" ;;
    none) echo "0 0" ;;
    esac
}
send() { # -> "sent seconds"
    case $1 in
    trafgen | trafgen2)
        local ncpu=1
        [ "$1" = trafgen2 ] && ncpu=2
        ip netns exec "$NS" timeout -s INT "$DUR" trafgen -o "$NV" -i "$WORK/udp64.cfg" -P "$ncpu" --no-sock-mem --notouch-irq > "$WORK/send.out" 2>&1 || true
        tr -d '\r' < "$WORK/send.out" | awk '/packets outgoing/{p=$1} END{print p+0}' | tr '\n' ' '
        echo "$DUR" ;;
    tcpreplay)
        ip netns exec "$NS" tcpreplay -i "$NV" --topspeed -K --loop=0 --duration="$DUR" "$PCAP" > "$WORK/send.out" 2>&1 || true
        sed -n 's/.*Actual: \([0-9]*\) packets.* in \([0-9.]*\) seconds.*/\1 \2/p' "$WORK/send.out" ;;
    *) log "unknown sender $1"; exit 2 ;;
    esac
}

echo "# compare-live: veth $HV (root ns) <- $NV (netns $NS), ${DUR} s per run, $(date -u +%F), $(nproc) cores, kernel $(uname -r)${NOTRACK:+, PodTap without decode/track}"
echo
echo "| sender | capturer | sent | send rate (pkt/s) | arrived at veth | captured | captured % | drops reported | capturer CPU s per M packets |"
echo "|---|---|---|---|---|---|---|---|---|"
IFS=, read -r -a SLIST <<< "$SENDERS"
IFS=, read -r -a CLIST <<< "$CAPS"
for s in "${SLIST[@]}"; do
    for c in "${CLIST[@]}"; do
        start_cap "$c"
        rx0=$(hv_rx); t0=$(cpu_ticks "$CAPPID")
        read -r sent secs < <(send "$s")
        sleep 2
        rx1=$(hv_rx); t1=$(cpu_ticks "$CAPPID")
        stop_cap "$c"
        read -r seen drops < <(cap_summary "$c")
        arrived=$((rx1 - rx0))
        awk -v s="$s" -v c="$c" -v sent="$sent" -v secs="$secs" -v arr="$arrived" -v seen="${seen:-0}" -v d="${drops:-0}" \
            -v cpu="$(( t1 - t0 ))" -v tick="$TICK" \
            'BEGIN{ if (c == "none") { printf "| %s | none (sender alone) | %d | %.0f | %d | - | - | - | - |\n", s, sent, (secs>0?sent/secs:0), arr; exit }
                    cs = cpu / tick
                    printf "| %s | %s | %d | %.0f | %d | %d | %.1f%% | %d | %s |\n", s, c, sent, (secs>0?sent/secs:0), arr, seen,
                        (arr>0?100*seen/arr:0), d, (seen>0?sprintf("%.2f", cs / (seen/1e6)):"-") }'
    done
done
