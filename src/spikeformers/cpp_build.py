"""Building and caching the project's C++ CPU kernels (the neurons', the max-pool's, the AEDAT counter's).

Each kernel is one C++ source compiled once for the vector instructions PyTorch
itself uses on this CPU (AVX2, AVX-512), into a cache folder keyed by the source
(its content and its path), the compiler flags and the PyTorch installation and
Python version: ``$SPIKEFORMERS_CACHE/kernels`` or, by default,
``~/.cache/spikeformers/kernels``.

Each is a plain shared library of ``extern "C"`` functions on raw pointers that
includes only ``cpp_support.h`` (PyTorch's header-only half-precision types and a
few of ATen's helpers, written there), called through ctypes
(:func:`load_library`). Not a PyTorch extension module: parsing
``torch/extension.h`` alone takes a minute and more on a small CPU, and the first
training run waits for its kernels; these build in seconds.

A kernel that cannot be built (no compiler, a read-only home) is reported as the
exception that stopped it, and its callers fall back to PyTorch's own operations.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import hashlib
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import torch

# -ffp-contract=off: no fused multiply-add, so results round exactly as PyTorch's reference
# operations do. -fno-trapping-math: lets the compiler vectorise selects.
CFLAGS = ["-O3", "-fopenmp", "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno"]

# Vector instructions, by the CPU capability PyTorch dispatches its own kernels to: the binary
# uses what this CPU has (AVX-512 halves the neuron backward's time against plain SSE2), the
# capability is part of the build key, so a cache folder copied to an older CPU builds again
# rather than crashing, and ATEN_CPU_CAPABILITY=avx2|default lowers both PyTorch's choice and
# ours. No FMA flag: -ffp-contract=off would keep the compiler from fusing anyway.
VECTOR_FLAGS = {
    "AVX2": ["-mavx2", "-mf16c"],
    "AVX512": ["-mavx2", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq"],
}


# The header every library kernel includes (part of every build key).
SUPPORT_HEADER = Path(__file__).with_name("cpp_support.h")

# The dtype codes of cpp_support.h's SF_DISPATCH_FLOATING.
DTYPE_CODES = {torch.float32: 0, torch.float64: 1, torch.bfloat16: 2, torch.float16: 3}


def build_flags() -> list[str]:
    """The compiler flags for this machine: :data:`CFLAGS` plus its capability's vector flags."""
    return CFLAGS + VECTOR_FLAGS.get(torch.backends.cpu.get_cpu_capability(), [])


def cache_dir() -> Path:
    """Where compiled kernels are kept between runs (``$SPIKEFORMERS_CACHE/kernels``)."""
    root = os.environ.get("SPIKEFORMERS_CACHE") or Path.home() / ".cache" / "spikeformers"
    return Path(root) / "kernels"


def build_key(source: Path) -> str:
    """The source, flags and toolchain that decide the binary: a change in any builds into a new folder.

    The paths are in it: another PyTorch installation has its own headers, and two checkouts keep
    folders of their own (the recorded build command names the source's path).
    """
    digest = hashlib.sha256(source.read_bytes() + SUPPORT_HEADER.read_bytes())
    for header in local_headers(source):
        digest.update(header.read_bytes())
    paths = (str(Path(source).resolve()), os.path.dirname(torch.__file__))
    digest.update(repr((build_flags(), torch.__version__, sys.version_info[:2], sys.platform, paths)).encode())
    return digest.hexdigest()[:16]


def local_headers(source: Path) -> list[Path]:
    """The headers beside ``source`` that it includes (``#include "name.h"``), and theirs: part of its build key."""
    found: list[Path] = []
    pending = [Path(source)]
    while pending:
        text = pending.pop().read_text(errors="replace")
        for name in re.findall(r'^\s*#\s*include\s*"([^"]+)"', text, flags=re.MULTILINE):
            header = Path(source).parent / name
            if header.is_file() and header not in found:
                found.append(header)
                pending.append(header)
    return found


@functools.cache
def load_library(source: Path, prefix: str):
    """The compiled library of ``source`` as a ``ctypes.CDLL`` (built now if needed), or the exception
    that stopped its build. Cached per process; the binary lives in ``cache_dir() / f"{prefix}-{key}"``."""
    return build_on_own_thread(source, prefix)


def check(result: bytes | None, kernel: str) -> None:
    """Raise the error a library entry point returned (its ``const char*``), naming the kernel."""
    if result is not None:
        raise RuntimeError(f"{kernel}: {result.decode(errors='replace')}")


def pointer(tensor: torch.Tensor | None) -> int | None:
    """A contiguous CPU tensor's data address for a library call (None for no tensor)."""
    return None if tensor is None else tensor.data_ptr()


def dtype_code(tensor: torch.Tensor, kernel: str) -> int:
    try:
        return DTYPE_CODES[tensor.dtype]
    except KeyError:
        raise TypeError(f"{kernel} takes float32, float64, bfloat16 or float16 tensors, not {tensor.dtype}") from None


def build_on_own_thread(source: Path, prefix: str):
    """``load_library`` without its cache: the build (or load) of ``source`` on a thread of its own."""
    # Built on a thread of its own: the first call usually comes from inside a model's forward, and
    # an exception the build machinery kept (with its traceback) would hold every calling frame and,
    # with them, that forward's activations, for good.
    result = []
    worker = threading.Thread(target=lambda: result.append(_build(source, prefix)), name=f"spikeformers-build-{prefix}")
    worker.start()
    worker.join()
    return result[0]


def compile_command(source: Path, output: Path) -> list[str]:
    """The compiler call that builds ``source`` into the shared library ``output``."""
    include = os.path.join(os.path.dirname(torch.__file__), "include")
    return [os.environ.get("CXX", "c++"), "-std=c++17", "-shared", "-fPIC", *build_flags(), "-fopenmp",
            "-I", str(SUPPORT_HEADER.parent), "-I", include, str(source), "-o", str(output)]


def _build(source: Path, prefix: str):
    key = build_key(source)
    build_dir = cache_dir() / f"{prefix}-{key}"
    binary = build_dir / f"spikeformers_{prefix}.so"
    try:
        build_dir.mkdir(parents=True, exist_ok=True)
        with open(build_dir / "spikeformers.flock", "w") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)  # one build per folder; the system drops it if we die
            if not binary.exists():
                print(f"spikeformers: compiling the {source.stem} for this CPU, once (a few seconds); "
                      f"cached in {build_dir}", file=sys.stderr, flush=True)
                for stale in build_dir.glob("*.so.partial*"):  # a build killed midway
                    stale.unlink(missing_ok=True)
                partial = build_dir / f"{binary.name}.partial{os.getpid()}"
                command = compile_command(source, partial)
                (build_dir / "build_command.txt").write_text(" ".join(command) + "\n")
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode != 0:
                    partial.unlink(missing_ok=True)
                    raise RuntimeError(f"{command[0]} failed: {(done.stderr or done.stdout).strip()[-3000:]}")
                os.replace(partial, binary)  # never a half-written library under the final name
            return ctypes.CDLL(str(binary))
    except Exception as err:  # no compiler, a read-only home: all mean "use another path"
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        print(f"spikeformers: could not build the {source.stem} ({first_line}); using PyTorch's slower "
              "operations instead", file=sys.stderr, flush=True)
        return err
