#!/usr/bin/env bash
# Runs every test. CI shows only the end of a long log, so when a test fails this repeats the
# failing tests and their recorded issues as the last lines of the output (the whole log stays in
# .build/test.log).
set -uo pipefail
swift=${SWIFT:-swift}
mkdir -p .build
"$swift" test "$@" 2>&1 | tee .build/test.log
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
    echo
    echo "=== failed: the issues recorded above, repeated (full log: .build/test.log) ==="
    grep -E '✘|↳|recorded an issue|error:|Fatal error|signal [0-9]+' .build/test.log \
        | grep -v -E '^✘ Suite .* failed after' | tail -n 60
fi
exit "$status"
