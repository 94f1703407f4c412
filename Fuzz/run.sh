#!/usr/bin/env bash
# Builds the libFuzzer harnesses and runs each one, then prints a summary per harness.
#
#   Fuzz/run.sh [SECONDS] [JOBS]
#
#   SECONDS  fuzzing time per harness (default 600)
#   JOBS     how many harnesses fuzz at the same time (default 1: one after the other;
#            2: both at once, one core each)
#
# Environment: HARNESSES (default "FuzzDecoder FuzzCaptureFile"), SWIFT (default swift),
# FUZZ_FLAGS (extra libFuzzer flags, e.g. "-seed=1").
#
# The working corpus of each harness is Fuzz/.build/corpus-<harness>, seeded from
# Fuzz/Seeds/<decoder|capture> and kept between runs; crashes, timeouts (one input taking
# more than 5 s) and OOMs (over 2048 MB) are written to Fuzz/artifacts/<harness>-*.
# Exit status: 0 when every harness ran clean, 1 when one found something, 2 on setup errors.
set -euo pipefail

SECONDS_PER_HARNESS=${1:-600}
JOBS=${2:-1}
HARNESSES=${HARNESSES:-"FuzzDecoder FuzzCaptureFile"}
FUZZ_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PATH="/opt/swift/usr/bin:$PATH"
SWIFT=${SWIFT:-swift}

case "$SECONDS_PER_HARNESS$JOBS" in
    *[!0-9]*) echo "usage: $0 [SECONDS] [JOBS]" >&2; exit 2 ;;
esac
[ "$JOBS" -ge 1 ] || { echo "JOBS must be at least 1" >&2; exit 2; }

echo "== building harnesses (release, -sanitize=fuzzer,address)"
"$SWIFT" build --package-path "$FUZZ_DIR" -c release \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
BIN=$("$SWIFT" build --package-path "$FUZZ_DIR" -c release --show-bin-path \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)

mkdir -p "$FUZZ_DIR/artifacts"

seeds_of() {
    case "$1" in
        FuzzDecoder) echo "$FUZZ_DIR/Seeds/decoder" ;;
        FuzzCaptureFile) echo "$FUZZ_DIR/Seeds/capture" ;;
        *) echo "unknown harness $1" >&2; exit 2 ;;
    esac
}

max_len_of() {
    case "$1" in
        FuzzDecoder) echo 4097 ;;       # selector + a frame of up to 4 KiB
        FuzzCaptureFile) echo 65536 ;;  # room for 64 KiB pcapng options
    esac
}

# Runs one harness; its log goes to Fuzz/.build/fuzz-<harness>.log.
run_one() {
    local name=$1
    local corpus="$FUZZ_DIR/.build/corpus-$name"
    local log="$FUZZ_DIR/.build/fuzz-$name.log"
    mkdir -p "$corpus"
    cp -n "$(seeds_of "$name")"/* "$corpus"/ 2>/dev/null || true
    local start end status
    start=$(date +%s)
    set +e
    # Output to a file, not a pipe: llvm-symbolizer children can hold a pipe open.
    # shellcheck disable=SC2086
    "$BIN/$name" "$corpus" \
        -max_total_time="$SECONDS_PER_HARNESS" -rss_limit_mb=2048 -timeout=5 \
        -max_len="$(max_len_of "$name")" -print_final_stats=1 \
        -artifact_prefix="$FUZZ_DIR/artifacts/$name-" ${FUZZ_FLAGS:-} > "$log" 2>&1
    status=$?
    set -e
    end=$(date +%s)
    echo "$status $((end - start))" > "$FUZZ_DIR/.build/fuzz-$name.status"
}

summarise() {
    local name=$1
    local log="$FUZZ_DIR/.build/fuzz-$name.log"
    local status duration
    read -r status duration < "$FUZZ_DIR/.build/fuzz-$name.status"
    # The "#N DONE" line, or the last status line if the run stopped early.
    local last
    last=$(grep -E '^#[0-9]+' "$log" | grep -E 'DONE' | tail -1 || true)
    [ -n "$last" ] || last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    local cov ft corp execs eps rss
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
    corp=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<< "$last")
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    local found="none"
    if grep -q 'ERROR: libFuzzer: timeout' "$log"; then found="TIMEOUT"
    elif grep -qE 'ERROR: libFuzzer: out-of-memory|malloc\(.*\) exceeds limit' "$log"; then found="OOM"
    elif grep -q 'ERROR: LeakSanitizer' "$log"; then found="LEAK"
    elif grep -qE 'ERROR: AddressSanitizer|ERROR: libFuzzer: deadly signal|Fatal error|ERROR: libFuzzer' "$log"; then found="CRASH"
    elif [ "$status" != 0 ]; then found="FAILURE (exit $status)"
    fi
    local artifact
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    echo "== $name"
    echo "   duration:   ${duration} s (limit ${SECONDS_PER_HARNESS} s)"
    echo "   executions: ${execs:-?}"
    echo "   exec/s:     ${eps:-?}"
    echo "   coverage:   cov ${cov:-?}, ft ${ft:-?}"
    echo "   corpus:     ${corp:-?} (libFuzzer), $(find "$FUZZ_DIR/.build/corpus-$name" -type f | wc -l) files in Fuzz/.build/corpus-$name"
    echo "   peak RSS:   ${rss:-?} MB"
    echo "   found:      $found${artifact:+ -> $artifact}"
    echo "   log:        $log"
    [ "$found" = none ]
}

running=0
for name in $HARNESSES; do
    echo "== fuzzing $name for $SECONDS_PER_HARNESS s (log: Fuzz/.build/fuzz-$name.log)"
    run_one "$name" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true

echo
clean=0
for name in $HARNESSES; do
    summarise "$name" || clean=1
done
exit "$clean"
