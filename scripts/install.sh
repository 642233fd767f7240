#!/usr/bin/env bash
# Set up .venv with Studio (editable) and its dependencies: the README's first command.
# PyPI's torch is the CUDA build (about 5.3 GB with its NVIDIA libraries). On a machine with no NVIDIA GPU
# (no nvidia-smi), torch and torchvision are taken from PyTorch's CPU index first (about 0.9 GB); where that
# index cannot be reached, pip falls back to PyPI's build. STUDIO_TORCH=cuda|cpu forces the choice.
# Extras go through: `bash scripts/install.sh "[search,ask]"`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
choice=${STUDIO_TORCH:-}
if [ -z "$choice" ]; then
    if command -v nvidia-smi >/dev/null 2>&1 || [ "$(uname -s)" = Darwin ]; then choice=default; else choice=cpu; fi
fi
if [ "$choice" = cpu ]; then
    .venv/bin/python -m pip install --quiet --retries 1 --timeout 15 torch torchvision \
        --index-url https://download.pytorch.org/whl/cpu ||
        echo "install.sh: PyTorch's CPU index is unreachable; taking torch from PyPI (the CUDA build)" >&2
fi
.venv/bin/python -m pip install --quiet -e ".${1:-}"
