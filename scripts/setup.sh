#!/usr/bin/env bash
# Creates .venv in the repository root and installs ko-emotion-bench into it.
# PyTorch comes first: the CUDA build where an NVIDIA GPU is present, else the CPU build
# (a bare `torch` requirement would pull several GB of CUDA packages onto a CPU-only machine).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
CPU_INDEX="${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip_install() { .venv/bin/python -m pip install --disable-pip-version-check -q "$@"; }

if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: NVIDIA GPU found, installing torch==$TORCH_VERSION (CUDA build)"
    pip_install "torch==$TORCH_VERSION"
  else
    echo "setup: no NVIDIA GPU, installing the CPU build of torch==$TORCH_VERSION"
    # A local wheel or mirror may carry the +cpu build; otherwise PyTorch's CPU index.
    pip_install "torch==$TORCH_VERSION+cpu" 2>/dev/null \
      || pip_install "torch==$TORCH_VERSION" --index-url "$CPU_INDEX" --extra-index-url https://pypi.org/simple
  fi
fi

echo "setup: installing ko-emotion-bench and its dependencies into .venv"
pip_install -e ".[dev]"
