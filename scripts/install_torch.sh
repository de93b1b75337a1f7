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
    # pip takes the highest version over every index it knows, and a CUDA build of a newer release
    # outranks the CPU build of an older one: so name the newest CPU build (local label +cpu) that
    # the indexes offer, PyTorch's CPU index included, exactly.
    cpu_index=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
    cpu_build=$("$python" -m pip index versions torch --extra-index-url "$cpu_index" --timeout 15 --retries 0 2>/dev/null \
        | sed -n 's/^Available versions: //p' | tr ',' '\n' | tr -d ' ' | grep '+cpu$' | head -n 1 || true)
    if [ -z "$cpu_build" ]; then
        echo "no NVIDIA GPU, and no CPU build of PyTorch on $cpu_index or pip's configured indexes:" >&2
        echo "install the PyTorch you want into $venv first (see https://pytorch.org/get-started)" >&2
        exit 1
    fi
    echo "no NVIDIA GPU: installing the CPU build of PyTorch ($cpu_build) into $venv"
    # pip's own indexes first (quiet, no retries): a machine with a local wheel store or mirror
    # then never waits on PyTorch's index.
    "$python" -m pip install --quiet --retries 0 "torch==$cpu_build" 2>/dev/null \
        || "$python" -m pip install --quiet --extra-index-url "$cpu_index" "torch==$cpu_build"
fi
