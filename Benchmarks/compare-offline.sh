#!/bin/bash
# compare-offline.sh - time podtap-flows against the C reference (bench/limit/flows.c) and the
# existing pcap -> flow tools on one capture file, and print one markdown table.
#
# usage: Benchmarks/compare-offline.sh [-n RUNS] [-s SMALL_PCAP] [-t TRUTH_CSV] [-o SKIP] FILE
#   -n RUNS     timed runs per tool after one untimed warm-up run; the median is reported (default 5)
#   -s SMALL    also time tshark (conversations; slow) on this smaller capture, with podtap-flows
#               and flows.c on the same file for its ratios
#   -t TRUTH    genpcap ground truth for FILE (default: FILE.truth.csv or <FILE without .pcap>.truth.csv);
#               podtap-flows --format csv --innermost is checked against it with check_truth.py
#   -o SKIP     comma-separated rows to leave out: cat,flows-c,tcpdump,softflowd,nfpcapd,ndpiReader,argus,tshark
#   -h          this help
#
# Builds podtap-flows (swift build -c release) and flows.c (cc -O2, into Benchmarks/.build/bench-bin)
# when missing or stale, and apt-get installs missing peers (softflowd nfdump libndpi-bin argus-client
# argus-server tcpdump tshark time; root only). Shared bench sources: $PODTAP_SHARED/bench, else
# ../shared/bench from the repository root. Each run is timed with /usr/bin/time (wall, user+sys, max
# RSS) on a warm page cache; flow counts come from one extra untimed run. packets/s = packets / wall.
# Ratios are packets/s ratios: "podtap / tool" > 1 means podtap-flows is faster.
set -uo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

RUNS=5
SMALL=""
TRUTH=""
SKIP=","
while getopts "n:s:t:o:h" opt; do
    case $opt in
    n) RUNS=$OPTARG ;;
    s) SMALL=$OPTARG ;;
    t) TRUTH=$OPTARG ;;
    o) SKIP=",$OPTARG," ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -ne 1 ]; then usage >&2; exit 2; fi
FILE=$1
[ -r "$FILE" ] || { echo "cannot read $FILE" >&2; exit 1; }
[ -z "$SMALL" ] || [ -r "$SMALL" ] || { echo "cannot read $SMALL" >&2; exit 1; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "-n wants a positive number" >&2; exit 2; }

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${PODTAP_SHARED:-$ROOT/../shared}
BENCH=$SHARED/bench
[ -d /opt/swift/usr/bin ] && PATH=/opt/swift/usr/bin:$PATH
log() { echo "compare-offline: $*" >&2; }
source "$HERE/vm-settle.sh"  # steal_ticks, settle
skip() { [[ $SKIP == *",$1,"* ]]; }
have() { command -v "$1" > /dev/null 2>&1; }

# --- build what is missing ---------------------------------------------------------------------
log "building podtap-flows (release)"
(cd "$ROOT" && swift build -c release --product podtap-flows >&2) || { log "swift build failed"; exit 1; }
PODTAP="$(cd "$ROOT" && swift build -c release --show-bin-path)/podtap-flows"

CBIN=$HERE/.build/bench-bin
CREF=$CBIN/flows
if [ ! -x "$CREF" ] || [ "$BENCH/limit/flows.c" -nt "$CREF" ]; then
    [ -f "$BENCH/limit/flows.c" ] || { log "no $BENCH/limit/flows.c (set PODTAP_SHARED)"; exit 1; }
    mkdir -p "$CBIN"
    log "building $CREF"
    cc -O2 -Wall -o "$CREF" "$BENCH/limit/flows.c" || exit 1
fi

declare -A PACKAGE=([/usr/bin/time]=time [tcpdump]=tcpdump [softflowd]=softflowd [nfpcapd]=nfdump
    [nfdump]=nfdump [ndpiReader]=libndpi-bin [argus]=argus-server [racluster]=argus-client [ra]=argus-client)
[ -n "$SMALL" ] && PACKAGE[tshark]=tshark
missing=()
for cmd in "${!PACKAGE[@]}"; do
    have "$cmd" || [ -x "$cmd" ] || missing+=("${PACKAGE[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if [ "$(id -u)" = 0 ] && have apt-get; then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
            || { apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; } \
            || log "apt-get failed; rows of missing tools are left out"
    else
        log "missing ${missing[*]} (not root or no apt-get): those rows are left out"
    fi
fi
[ -x /usr/bin/time ] || { log "/usr/bin/time is needed (Debian package 'time')"; exit 1; }

WORK=$(mktemp -d /tmp/compare-offline.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# --- measuring ---------------------------------------------------------------------------------
packets_of() { # genpcap's summary, else the C reference's count
    local s="$1.summary.txt"
    if [ -f "$s" ]; then sed -n 's/^packets=//p' "$s"; else "$CREF" "$1" | sed 's/.*packets=\([0-9]*\).*/\1/'; fi
}
median() { sort -g | awk '{a[NR]=$1} END{if(NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# timeit NAME CMD... -> W (median wall s), C (median user+sys s), R (median max RSS MiB).
# /usr/bin/time gives user, sys and max RSS; wall comes from $EPOCHREALTIME around it (time's %e
# has 10 ms resolution).
timeit() {
    local name=$1; shift
    local tf="$WORK/$name.time" wf="$WORK/$name.wall" t0 t1
    : > "$tf"; : > "$wf"
    "$@" > /dev/null 2>&1 # warm-up: page cache, lazy binding
    for _ in $(seq "$RUNS"); do
        t0=$EPOCHREALTIME
        /usr/bin/time -f "%U %S %M" -a -o "$tf" "$@" > /dev/null 2>&1
        t1=$EPOCHREALTIME
        awk -v a="$t0" -v b="$t1" 'BEGIN{ printf "%.3f\n", b - a }' >> "$wf"
    done
    W=$(median < "$wf")
    C=$(awk '{print $1+$2}' "$tf" | median)
    R=$(awk '{printf "%.0f\n", $3/1024}' "$tf" | median)
}

# Rows: name|what|packets|wall|cpu|rss|flows|group ; group: self, cref, peer, floor, and "-small" variants.
ROWS=()
row() { ROWS+=("$1|$2|$3|$W|$C|$R|$4|$5"); }

NP=$(packets_of "$FILE")
cat "$FILE" > /dev/null
# The builds and installs above freed memory: on a VM with free-page reporting, timing now
# would lose CPU to it.
settle
STEAL0=$(steal_ticks)

if ! skip cat; then
    timeit cat sh -c "cat '$FILE' > /dev/null"
    row "cat > /dev/null" "read floor (page cache -> /dev/null)" "$NP" "-" floor
fi

timeit podtap sh -c "'$PODTAP' --format csv '$FILE' > /dev/null"
"$PODTAP" --format csv "$FILE" > "$WORK/podtap.csv" 2> "$WORK/podtap.err"
pt_flows=$(sed -n 's/^flows *\([0-9]*\).*/\1/p' "$WORK/podtap.err")
pt_carriers=$(awk -F, 'NR > 1 && $15 == 1' "$WORK/podtap.csv" | wc -l)
row "podtap-flows --format csv" "Swift, mmap, bidir flows + TCP state, VXLAN/Geneve decap" "$NP" \
    "$pt_flows = $((pt_flows - pt_carriers)) + $pt_carriers VXLAN carriers (decap)" self

if ! skip flows-c; then
    timeit flows-c "$CREF" "$FILE"
    n=$("$CREF" "$FILE" | sed 's/.*flows=\([0-9]*\).*/\1/')
    row "flows.c" "C reference, mmap, bidir table, VXLAN decap" "$NP" "$n (decap)" cref
    timeit flows-c-x "$CREF" -x "$FILE"
    n=$("$CREF" -x "$FILE" | sed 's/.*flows=\([0-9]*\).*/\1/')
    row "flows.c -x" "same, no VXLAN decap" "$NP" "$n" cref-x
fi
if ! skip tcpdump && have tcpdump; then
    timeit tcpdump-w tcpdump -r "$FILE" -w /dev/null
    row "tcpdump -r F -w /dev/null" "libpcap read + rewrite, no decode" "$NP" "-" peer
fi
if ! skip softflowd && have softflowd; then
    timeit softflowd softflowd -d -r "$FILE" -n 127.0.0.1:9995 -v 9 -6 -m 262144
    out=$(softflowd -d -r "$FILE" -n 127.0.0.1:9995 -v 9 -6 -m 262144 2>&1)
    n=$(echo "$out" | sed -n 's/^Flows expired: \([0-9]*\).*/\1/p')
    rec=$(echo "$out" | sed -n 's/^Flows exported: .*(\([0-9]*\) records).*/\1/p')
    row "softflowd -r" "bidir flows -> NetFlow v9 (udp 127.0.0.1)" "$NP" "$n ($rec v9 records)" peer
fi
if ! skip nfpcapd && have nfpcapd; then
    timeit nfpcapd sh -c "d=\$(mktemp -d '$WORK/nfp.XXXX'); nfpcapd -r '$FILE' -w \"\$d\"; rm -rf \"\$d\""
    mkdir -p "$WORK/nfp"
    n=$(nfpcapd -r "$FILE" -w "$WORK/nfp" 2>&1 | sed -n "s/^Ident: .* Flows: \([0-9]*\),.*/\1/p" | tail -1)
    nb=$(nfdump -R "$WORK/nfp" -q -b -o csv 2>/dev/null | wc -l)
    row "nfpcapd -r" "unidir flows -> nfcapd file" "$NP" "$n uni ($nb after nfdump -b)" peer
fi
if ! skip ndpiReader && have ndpiReader; then
    timeit ndpiReader ndpiReader -i "$FILE"
    n=$(ndpiReader -i "$FILE" 2>&1 | sed -n 's/^[[:space:]]*Unique flows:[[:space:]]*\([0-9]*\).*/\1/p')
    row "ndpiReader -i" "nDPI flow table + DPI" "$NP" "$n" peer
fi
if ! skip argus && have argus; then
    timeit argus sh -c "rm -f '$WORK/a.argus'; argus -F /dev/null -r '$FILE' -w '$WORK/a.argus'"
    rm -f "$WORK/a.argus"
    argus -F /dev/null -r "$FILE" -w "$WORK/a.argus" > /dev/null 2>&1
    nr=$(ra -r "$WORK/a.argus" -n -L -1 - ip 2>/dev/null | wc -l)
    n=$(racluster -r "$WORK/a.argus" -n -L -1 - ip 2>/dev/null | wc -l)
    row "argus -r" "bidir flow records -> argus file" "$NP" "$n after racluster ($nr records)" peer
fi
if [ -n "$SMALL" ] && ! skip tshark && have tshark; then
    NPS=$(packets_of "$SMALL")
    s=$(basename "$SMALL")
    timeit podtap-small sh -c "'$PODTAP' --format csv '$SMALL' > /dev/null"
    n=$("$PODTAP" --format csv "$SMALL" 2>&1 > /dev/null | sed -n 's/^flows *\([0-9]*\).*/\1/p')
    row "podtap-flows ($s)" "as above, on the small file" "$NPS" "$n" self-small
    timeit flows-c-small "$CREF" "$SMALL"
    n=$("$CREF" "$SMALL" | sed 's/.*flows=\([0-9]*\).*/\1/')
    row "flows.c ($s)" "as above, on the small file" "$NPS" "$n (decap)" cref-small
    timeit tshark tshark -r "$SMALL" -q -z conv,tcp -z conv,udp
    n=$(tshark -r "$SMALL" -q -z conv,tcp -z conv,udp 2>/dev/null | grep -c '<->')
    row "tshark -z conv,tcp -z conv,udp ($s)" "conversations" "$NPS" "$n" peer-small
    timeit tshark-vx tshark -r "$SMALL" -q -d udp.port==8472,vxlan -z conv,tcp -z conv,udp
    n=$(tshark -r "$SMALL" -q -d udp.port==8472,vxlan -z conv,tcp -z conv,udp 2>/dev/null | grep -c '<->')
    row "tshark ... -d udp.port==8472,vxlan ($s)" "same, VXLAN decoded (inner + outer)" "$NPS" "$n" peer-small
fi

# --- table -------------------------------------------------------------------------------------
pps_of_group() { # median-based packets/s of the first row of a group
    local r
    for r in "${ROWS[@]}"; do
        IFS='|' read -r _ _ p w _ _ _ g <<< "$r"
        [ "$g" = "$1" ] && { awk -v p="$p" -v w="$w" 'BEGIN{ if (w > 0) printf "%.6f", p / w; else print 0 }'; return; }
    done
    echo 0
}
PT=$(pps_of_group self); PTS=$(pps_of_group self-small)
CR=$(pps_of_group cref); CRS=$(pps_of_group cref-small)

echo "# $(basename "$FILE"): $NP packets, $(stat -c %s "$FILE") bytes${SMALL:+; small file $(basename "$SMALL")}; median of $RUNS runs after 1 warm-up (/usr/bin/time, warm page cache)"
echo "# $(date -u '+%F %H:%M UTC'), $(nproc) cores $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "| tool | what it does | packets/s | wall s | user+sys s | peak RSS MiB | flows found | podtap / tool | tool / C ref |"
echo "|---|---|---|---|---|---|---|---|---|"
verdict_peers=yes
slowest_margin=""
for r in "${ROWS[@]}"; do
    IFS='|' read -r name what p w c rss flows g <<< "$r"
    pps=$(awk -v p="$p" -v w="$w" 'BEGIN{ if (w > 0) printf "%.6f", p / w; else print 0 }')
    ref_pt=$PT; ref_cr=$CR
    case $g in *-small) ref_pt=$PTS; ref_cr=$CRS ;; esac
    fmt=$(awk -v x="$pps" 'BEGIN{ if (x >= 1e6) printf "%.2f M", x / 1e6; else printf "%.0f k", x / 1e3 }')
    vs_pt=$(awk -v a="$ref_pt" -v b="$pps" 'BEGIN{ if (b > 0 && a > 0) printf "%.2f×", a / b; else print "-" }')
    vs_cr=$(awk -v a="$pps" -v b="$ref_cr" 'BEGIN{ if (b > 0) printf "%.2f×", a / b; else print "-" }')
    echo "| $name | $what | $fmt | $w | $c | $rss | $flows | $vs_pt | $vs_cr |"
    if [[ $g == peer* ]]; then
        if awk -v a="$ref_pt" -v b="$pps" 'BEGIN{ exit !(a <= b) }'; then
            verdict_peers=no
            slowest_margin="$slowest_margin $name"
        fi
    fi
done
echo
echo "podtap-flows peak RSS includes the mmapped file's resident page-cache pages (as flows.c's does)."
echo "CPU stolen by the hypervisor while measuring: $(awk -v t="$(( $(steal_ticks) - STEAL0 ))" -v hz="$(getconf CLK_TCK)" 'BEGIN{ printf "%.2f", t / hz }') s (after waiting for free-page reporting to settle)."
if [ "$CR" != 0 ]; then
    ratio=$(awk -v a="$PT" -v b="$CR" 'BEGIN{ printf "%.2f", a / b }')
    ok=$(awk -v r="$ratio" 'BEGIN{ print (r >= 0.8) ? "yes" : "NO" }')
    line="PodTap is ${ratio}× the C reference (flows.c with VXLAN decap): ≥ 0.8× $ok"
else
    line="PodTap vs the C reference: not measured (-o flows-c)"
fi
if [ "$verdict_peers" = yes ]; then
    line="$line; faster than every other peer measured: yes"
else
    line="$line; faster than every other peer measured: NO (not faster than:$slowest_margin)"
fi

# --- ground truth ------------------------------------------------------------------------------
if [ -z "$TRUTH" ]; then
    for t in "$FILE.truth.csv" "${FILE%.*}.truth.csv"; do [ -f "$t" ] && { TRUTH=$t; break; }; done
fi
if [ -n "$TRUTH" ]; then
    "$PODTAP" --format csv --innermost "$FILE" > "$WORK/inner.csv" 2> /dev/null
    verdict=$(python3 "$BENCH/tools/check_truth.py" "$TRUTH" "$WORK/inner.csv")
    rc=$?
    echo "check_truth.py $(basename "$TRUTH") vs podtap-flows --format csv --innermost: $(echo "$verdict" | head -1) -> $([ $rc = 0 ] && echo exact || echo MISMATCH)"
fi
echo "$line"
