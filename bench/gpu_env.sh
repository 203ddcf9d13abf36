# Sourced by bench/gpu.sh and bench/gpu_sweep.sh on a lent GPU machine without a package index:
# unpacks the parts of bench/gpu_site.sh from /root/parts into /tmp/site once, puts it on
# PYTHONPATH, and stops the caller where wordfreq or gguf still do not import (a search without
# wordfreq runs on word pieces alone and scores far worse, silently for a sweep).
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ -d /root/parts ] && [ ! -d /tmp/site ]; then
    cat /root/parts/part* | "$py" -c "
import lzma, sys, tarfile
tarfile.open(fileobj=lzma.open(sys.stdin.buffer), mode='r|').extractall('/tmp/site')" || exit 1
fi
[ -d /tmp/site ] && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
"$py" -c "import wordfreq, gguf" || { echo "wordfreq or gguf missing: see bench/gpu_site.sh" >&2; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
