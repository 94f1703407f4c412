#!/bin/bash
# compare-live.sh - live capture on a veth: PodTap's AFPacketSource (1 and 2 fanout threads) and
# PcapLiveSource against netsniff-ng, tcpdump, the TPACKET_V3 reference reader (bench/limit/tpv3.c)
# and a C decode + track yardstick (Tools/flows-live: tpv3.c's ring feeding bench/limit/flows.c),
# in one run, under the same senders. Prints one markdown table (with -r, a summary after it);
# with -i, PodTap alone on an existing interface.
#
# usage (root): Benchmarks/compare-live.sh [-d SECONDS] [-r ROUNDS] [-p PCAP] [-c CAPTURERS] [-s SENDERS] [-n]
#               Benchmarks/compare-live.sh -i INTERFACE [-d SECONDS] [-r ROUNDS] [-c CAPTURERS] [-n]
#   -d SECONDS    blast duration per run (default 10)
#   -r ROUNDS     run every capturer ROUNDS times, alternating (capturer 1, 2, …, 1, 2, …), then
#                 print a summary: mean, lowest and highest of each capturer's rate and CPU, and
#                 its send rate over netsniff-ng's (default 1: one row each, no summary)
#   -p PCAP       capture replayed by the tcpreplay sender (default: a genpcap capture made here)
#   -c CAPTURERS  comma list from: none, podtap-afpacket, podtap-afpacket2, podtap-pcap,
#                 netsniff-ng, tcpdump, tpv3, flows-live (default: all)
#                 flows-live: tpv3.c's ring loop with flows.c's parse and flow table (VXLAN
#                 unwrapped), each frame parsed and its bucket requested 8 frames ahead; what
#                 decoding and tracking cost in C, doing less than PodTap (no TCP state, RTT,
#                 DNS/TLS, timeouts or events)
#   -s SENDERS    comma list from: trafgen (64-byte UDP, 1 process), trafgen2 (2 processes),
#                 tcpreplay (--topspeed of PCAP) (default: trafgen2,trafgen,tcpreplay)
#   -n            PodTap captures without decoding and tracking (raw capture cost only)
#   -i INTERFACE  an existing interface (a node's eth0, a pod's veth): no namespace, no generator;
#                 only PodTap's backends run, each for SECONDS, on the traffic already there
#                 (default capturers podtap-afpacket,podtap-afpacket2,podtap-pcap). "on interface"
#                 is the interface's rx+tx packet counters over the SECONDS measured (AF_PACKET
#                 sees both directions) and their rate; "captured" is every packet the capturer
#                 saw from ready to stop (a little more than SECONDS), and "captured %" its share
#                 of what reached the socket: captured / (captured + dropped by the kernel).
#                 Nothing on the interface is changed: no promiscuous mode, no filter, no address.
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
# In a virtual machine the table also shows the CPU time the hypervisor took from the guest
# during the blast ("stolen", the steal column of /proc/stat, all CPUs). A guest with a
# virtio-balloon that reports free pages to the host (its "reporting_vq" in /proc/interrupts)
# hands every capturer's freed memory back to the host over the following seconds, and that
# work is stolen from whichever run comes next (measured: ~0.5 s of 16 CPU-seconds after
# netsniff-ng's 2.4 GiB ring, ~5 % of the next run's send rate). So after each capturer stops,
# the script waits until the reporting has been quiet for 4 s (at most 60 s) before the next
# capturer starts.
set -euo pipefail
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

DUR=10
ROUNDS=1
PCAP=""
CAPS=""
SENDERS=trafgen2,trafgen,tcpreplay
NOTRACK=""
IFACE=""
while getopts "d:r:p:c:s:ni:h" o; do
    case $o in
    d) DUR=$OPTARG ;; r) ROUNDS=$OPTARG ;; p) PCAP=$OPTARG ;; c) CAPS=$OPTARG ;; s) SENDERS=$OPTARG ;;
    n) NOTRACK=--no-track ;; i) IFACE=$OPTARG ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
[ $OPTIND -gt $# ] || { echo "compare-live: unexpected argument '${!OPTIND}'" >&2; usage >&2; exit 2; }
case $DUR in '' | *[!0-9]* | 0) echo "compare-live: -d wants a whole number of seconds > 0, not '$DUR'" >&2; exit 2 ;; esac
case $ROUNDS in '' | *[!0-9]* | 0) echo "compare-live: -r wants a number of rounds > 0, not '$ROUNDS'" >&2; exit 2 ;; esac
if [ -n "$IFACE" ]; then
    CAPS=${CAPS:-podtap-afpacket,podtap-afpacket2,podtap-pcap}
    for c in ${CAPS//,/ }; do
        case $c in podtap-afpacket | podtap-afpacket2 | podtap-pcap) ;;
        *) echo "compare-live: with -i only PodTap's backends run (podtap-afpacket, podtap-afpacket2, podtap-pcap), not '$c'" >&2; exit 2 ;;
        esac
    done
    [ -e "/sys/class/net/$IFACE" ] || { echo "compare-live: no interface '$IFACE' in this network namespace (see ip link)" >&2; exit 1; }
else
    CAPS=${CAPS:-none,podtap-afpacket,podtap-afpacket2,podtap-pcap,netsniff-ng,tcpdump,tpv3,flows-live}
fi
[ "$(id -u)" = 0 ] || { echo "compare-live: run as root (namespaces, veth, AF_PACKET)" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${PODTAP_SHARED:-$ROOT/../shared}
BENCH=$SHARED/bench
[ -d /opt/swift/usr/bin ] && PATH=/opt/swift/usr/bin:$PATH
log() { echo "compare-live: $*" >&2; }

# --- tools -------------------------------------------------------------------------------------
if [ -z "$IFACE" ]; then
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
    src=$HERE/Tools/flows-live/flows-live.c
    if [ ! -x "$CBIN/flows-live" ] || [ "$src" -nt "$CBIN/flows-live" ] || [ "$BENCH/limit/flows.c" -nt "$CBIN/flows-live" ]; then
        cc -O2 -Wall -DFLOWS_C="\"$BENCH/limit/flows.c\"" -o "$CBIN/flows-live" "$src"
    fi
fi
log "building podtap-live (release)"
(cd "$HERE" && swift build -c release --product podtap-live >&2) || { log "swift build failed"; exit 1; }
PODTAP=$(cd "$HERE" && swift build -c release --show-bin-path)/podtap-live

WORK=$(mktemp -d /tmp/compare-live.XXXXXX)
CAPPID=""
NS=""
if [ -n "$IFACE" ]; then
    HV=$IFACE
else
    NS=ptlive$$
    HV=ptlh$$; NV=ptln$$
    HV=${HV:0:15}; NV=${NV:0:15}
fi
cleanup() {
    [ -n "$CAPPID" ] && kill -KILL "$CAPPID" 2>/dev/null || true
    if [ -n "$NS" ]; then  # only what this script created; never a -i interface
        ip link del "$HV" 2>/dev/null || true
        ip netns del "$NS" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

if [ -z "$IFACE" ]; then
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
fi

TICK=$(getconf CLK_TCK)
hv_rx() { cat "/sys/class/net/$HV/statistics/rx_packets"; }
# Packets through an existing interface in either direction (AF_PACKET sees both).
if_packets() { echo $(( $(hv_rx) + $(cat "/sys/class/net/$HV/statistics/tx_packets") )); }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# CPU time the hypervisor took (steal_ticks) and waiting out free-page reporting (settle).
source "$HERE/vm-settle.sh"

start_cap() {
    case $1 in
    podtap-afpacket) "$PODTAP" afpacket "$HV" 1 $NOTRACK > "$WORK/cap.out" 2>&1 & ;;
    podtap-afpacket2) "$PODTAP" afpacket "$HV" 2 $NOTRACK > "$WORK/cap.out" 2>&1 & ;;
    podtap-pcap) "$PODTAP" pcap "$HV" 1 $NOTRACK > "$WORK/cap.out" 2>&1 & ;;
    tcpdump) tcpdump -i "$HV" -w /dev/null > "$WORK/cap.out" 2>&1 & ;;
    netsniff-ng) netsniff-ng --in "$HV" --out /dev/null --silent > "$WORK/cap.out" 2>&1 & ;;
    tpv3) "$CBIN/tpv3" -i "$HV" -t $((DUR + 600)) > "$WORK/cap.out" 2>&1 & ;;
    flows-live) "$CBIN/flows-live" -i "$HV" -t $((DUR + 600)) > "$WORK/cap.out" 2>&1 & ;;
    none) echo "none ready" > "$WORK/cap.out"; sleep "$((DUR + 600))" & ;;
    *) log "unknown capturer $1"; exit 2 ;;
    esac
    CAPPID=$!
    local pat
    case $1 in podtap-*) pat='podtap ready' ;; tcpdump) pat='listening on' ;; netsniff-ng) pat='Running!' ;; tpv3) pat='tpv3 ready' ;; flows-live) pat='flows-live ready' ;; none) pat='none ready' ;; esac
    for _ in $(seq 6000); do grep -q "$pat" "$WORK/cap.out" 2>/dev/null && break; sleep 0.01; done
    grep -q "$pat" "$WORK/cap.out" || { log "$1 did not start:"; cat "$WORK/cap.out" >&2; exit 1; }
    # With a generator, let the capturer settle before the blast; with -i the traffic is
    # already flowing and the window starts now.
    [ -n "$IFACE" ] || sleep 1
}
# Whether PID is still running (an exited child stays a zombie until waited for).
running() { [ -r "/proc/$1/status" ] && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"; }
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
    tpv3 | flows-live) sed -n 's/.* seen=\([0-9]*\).*kernel_drops=\([0-9]*\).*/\1 \2/p' "$WORK/cap.out" ;;
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

# One table row; also appends "sender<TAB>capturer<TAB>rate<TAB>cpu/M<TAB>drops<TAB>stolen" to
# $WORK/rows for the summary. rate: the send rate, or with -i the interface's packets per second.
row() { # sender capturer sent secs arrived seen drops cputicks stealticks
    awk -v s="$1" -v c="$2" -v sent="$3" -v secs="$4" -v arr="$5" -v seen="${6:-0}" -v d="${7:-0}" \
        -v cpu="$8" -v st="$9" -v tick="$TICK" -v iface="$IFACE" -v rows="$WORK/rows" \
        'BEGIN{ stolen = sprintf("%.2f", st / tick)
                if (c == "none") { rate = (secs>0?sent/secs:0)
                    printf "| %s | none (sender alone) | %d | %.0f | %d | - | - | - | - | %s |\n", s, sent, rate, arr, stolen
                    printf "%s\t%s\t%.0f\t-\t-\t%s\n", s, c, rate, stolen >> rows; exit }
                cs = cpu / tick; cpm = (seen>0?sprintf("%.2f", cs / (seen/1e6)):"-")
                if (iface != "") { rate = arr / secs; pct = (seen+d>0?sprintf("%.2f%%", 100*seen/(seen+d)):"-")
                    printf "| %s | %s | - | - | %d (%.0f/s) | %d | %s | %d | %s | %s |\n", s, c, arr, rate, seen, pct, d, cpm, stolen }
                else { rate = (secs>0?sent/secs:0); pct = (arr>0?sprintf("%.1f%%", 100*seen/arr):"-")
                    printf "| %s | %s | %d | %.0f | %d | %d | %s | %d | %s | %s |\n", s, c, sent, rate, arr, seen, pct, d, cpm, stolen }
                printf "%s\t%s\t%.0f\t%s\t%d\t%s\n", s, c, rate, cpm, d, stolen >> rows }'
}

# Mean, lowest and highest per sender and capturer over the rounds, and each capturer's mean
# send rate over netsniff-ng's under the same sender.
summary() {
    # With -i there is no netsniff-ng to compare with: no ratio column.
    local what="send rate (pkt/s)" ratio=" send rate / netsniff-ng's |" rule="---|"
    [ -n "$IFACE" ] && { what="on interface (pkt/s)"; ratio=""; rule=""; }
    echo
    echo "Summary over $ROUNDS alternating rounds:"
    echo
    echo "| sender | capturer | runs | $what mean | lowest – highest | CPU s per M mean | lowest – highest | drops | CPU stolen s mean |$ratio"
    echo "|---|---|---|---|---|---|---|---|---|$rule"
    awk -F'\t' -v iface="$IFACE" '
        { k = $1 "\t" $2; if (!(k in n)) order[++keys] = k; n[k]++; r[k] += $3
          if (!(k in rlo) || $3 < rlo[k]) rlo[k] = $3; if (!(k in rhi) || $3 > rhi[k]) rhi[k] = $3
          if ($4 != "-") { cn[k]++; c[k] += $4; if (!(k in clo) || $4 < clo[k]) clo[k] = $4; if (!(k in chi) || $4 > chi[k]) chi[k] = $4 }
          if ($5 != "-") d[k] += $5
          st[k] += $6 }
        END { for (i = 1; i <= keys; i++) { k = order[i]; split(k, sc, "\t")
                ns = sc[1] "\tnetsniff-ng"
                ratio = (ns in n && sc[2] != "netsniff-ng" && sc[2] != "none") ? sprintf("%.3f", (r[k]/n[k]) / (r[ns]/n[ns])) : "-"
                cpu = (k in cn) ? sprintf("%.2f", c[k]/cn[k]) : "-"
                cr = (k in cn) ? sprintf("%.2f – %.2f", clo[k], chi[k]) : "-"
                printf "| %s | %s | %d | %.0f | %.0f – %.0f | %s | %s | %s | %.2f |%s\n", sc[1], sc[2], n[k], r[k]/n[k], rlo[k], rhi[k],
                    cpu, cr, (k in d) ? d[k] : "-", st[k]/n[k], iface != "" ? "" : " " ratio " |" } }' "$WORK/rows"
}

IFS=, read -r -a CLIST <<< "$CAPS"
: > "$WORK/rows"
settle  # the build and the capture generated above freed memory too
if [ -n "$IFACE" ]; then
    echo "# compare-live: existing interface $HV, no generator, ${DUR} s per run, $(date -u +%F), $(nproc) cores, kernel $(uname -r)${NOTRACK:+, PodTap without decode/track}"
    echo
    echo "| sender | capturer | sent | send rate (pkt/s) | on interface (rx+tx) in ${DUR} s | captured | captured % (of captured + dropped) | drops reported | capturer CPU s per M packets | CPU stolen s |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for ((round = 1; round <= ROUNDS; round++)); do
        for c in "${CLIST[@]}"; do
            start_cap "$c"
            p0=$(if_packets); t0=$(cpu_ticks "$CAPPID"); st0=$(steal_ticks)
            sleep "$DUR"
            p1=$(if_packets); t1=$(cpu_ticks "$CAPPID"); st1=$(steal_ticks)
            stop_cap "$c"
            read -r seen drops < <(cap_summary "$c")
            row "$HV traffic" "$c" 0 "$DUR" $((p1 - p0)) "$seen" "$drops" $((t1 - t0)) $((st1 - st0))
            settle
        done
    done
else
    echo "# compare-live: veth $HV (root ns) <- $NV (netns $NS), ${DUR} s per run, $(date -u +%F), $(nproc) cores, kernel $(uname -r)${NOTRACK:+, PodTap without decode/track}"
    echo
    echo "| sender | capturer | sent | send rate (pkt/s) | arrived at veth | captured | captured % | drops reported | capturer CPU s per M packets | CPU stolen s |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    IFS=, read -r -a SLIST <<< "$SENDERS"
    for s in "${SLIST[@]}"; do
        for ((round = 1; round <= ROUNDS; round++)); do
            for c in "${CLIST[@]}"; do
                start_cap "$c"
                rx0=$(hv_rx); t0=$(cpu_ticks "$CAPPID"); st0=$(steal_ticks)
                read -r sent secs < <(send "$s")
                st1=$(steal_ticks)
                sleep 2
                rx1=$(hv_rx); t1=$(cpu_ticks "$CAPPID")
                stop_cap "$c"
                read -r seen drops < <(cap_summary "$c")
                row "$s" "$c" "$sent" "$secs" $((rx1 - rx0)) "$seen" "$drops" $((t1 - t0)) $((st1 - st0))
                settle
            done
        done
    done
fi
[ "$ROUNDS" -gt 1 ] && summary
exit 0
