#!/usr/bin/env bash
# One GPU call for judging search changes:
#   1. the search alone on the test set on CUDA (the seconds per vector to report);
#   2. the configurations of VARIANTS (bench/sweep.py) over the dev set, its older and newer
#      halves as two sweeps side by side (a run stopped at the deadline loses one half, and the
#      halves are reported apart), with TEST_KNOBS, if set, as one more test run beside them.
# Needs what bench/gpu.sh needs (bench/gpu_env.sh). Every report and log goes into
# $OUT/sweep.tar.gz (a call brings back few files); the tables end stdout. Keeps inside SECONDS.
#
#   OUT=results TEST_KNOBS="flip_repair=true" bash bench/gpu_sweep.sh VARIANTS [SECONDS] [JOBS]
set -u
out=${OUT:?set OUT to the folder for the results}
variants=${1:?usage: bench/gpu_sweep.sh VARIANTS [SECONDS] [JOBS]}
budget=${2:-480}
jobs=${3:-7}
. "$(dirname "$0")/gpu_env.sh"
res="$out/r"
mkdir -p "$res"
pack() { tar -czf "$out/sweep.tar.gz" -C "$out" r && rm -rf "$res"; }
trap pack EXIT

echo "phase 1: search alone on the test set ($((budget - SECONDS)) s left)"
timeout 150 "$py" bench/inversion.py --set test --device cuda --no-baseline --progress \
    >"$res/test_base.json" 2>"$res/test_base.err"
grep -E "^result|Error" "$res/test_base.err"

left=$((budget - SECONDS - 15))
echo "phase 2: sweeps over the dev halves, $jobs jobs each, deadline ${left} s"
sweep() { "$py" bench/sweep.py "$variants" --set dev --device cuda --jobs "$jobs" --deadline "$left" "$@"; }
sweep --limit 30 --out "$res/dev_old.json" >"$res/dev_old.txt" 2>"$res/dev_old.err" &
sweep --skip 30 --out "$res/dev_new.json" >"$res/dev_new.txt" 2>"$res/dev_new.err" &
if [ -n "${TEST_KNOBS:-}" ]; then
    # shellcheck disable=SC2086 # one knob a word
    timeout "$left" "$py" bench/inversion.py --set test --device cuda --no-baseline --threads 1 --progress \
        $(printf -- '--knob=%s ' $TEST_KNOBS) >"$res/test_knobs.json" 2>"$res/test_knobs.err" &
fi
wait
[ -n "${TEST_KNOBS:-}" ] && { echo "test with $TEST_KNOBS:"; grep -E "^result|Error" "$res/test_knobs.err"; }
for half in old new; do
    echo "dev, $half half:"
    cat "$res/dev_$half.txt"
done
echo "done, $((budget - SECONDS)) s left"
