#!/bin/sh
# Install PyTorch into the virtual environment $1 (default .venv) unless it already has it:
# the CUDA build where an NVIDIA GPU answers, else the CPU build from PyTorch's CPU index.
# A plain `pip install torch` on a Linux machine without a GPU would fetch a CUDA build of
# several GB that it can never use.
set -eu
venv=${1:-.venv}
python="$venv/bin/python"
if "$python" -c "import torch" 2>/dev/null; then
    echo "PyTorch $("$python" -c 'import torch; print(torch.__version__)') is already installed in $venv"
    exit 0
fi
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "an NVIDIA GPU answers: installing PyTorch with CUDA into $venv"
    "$python" -m pip install --quiet torch
else
    echo "no NVIDIA GPU: installing the CPU build of PyTorch into $venv"
    "$python" -m pip install --quiet torch --index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
fi
