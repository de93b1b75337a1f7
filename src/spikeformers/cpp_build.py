"""Building and caching the project's C++ CPU kernels (the neurons', the max-pool's, the AEDAT counter's).

Each kernel is one C++ source compiled with the compiler PyTorch's ``cpp_extension``
finds (20 to 60 s, once), for the vector instructions PyTorch itself uses on this
CPU (AVX2, AVX-512), into a cache folder keyed by the source (its content and its
path), the compiler flags and the PyTorch installation and Python version:
``$SPIKEFORMERS_CACHE/kernels`` or, by default, ``~/.cache/spikeformers/kernels``.
A kernel that cannot be built (no
compiler, no ninja, a read-only home) is reported as the exception that stopped
it, and its callers fall back to PyTorch's own operations.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
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


def build_flags() -> list[str]:
    """The compiler flags for this machine: :data:`CFLAGS` plus its capability's vector flags."""
    return CFLAGS + VECTOR_FLAGS.get(torch.backends.cpu.get_cpu_capability(), [])


def cache_dir() -> Path:
    """Where compiled kernels are kept between runs (``$SPIKEFORMERS_CACHE/kernels``)."""
    root = os.environ.get("SPIKEFORMERS_CACHE") or Path.home() / ".cache" / "spikeformers"
    return Path(root) / "kernels"


def build_key(source: Path) -> str:
    """The source, flags and toolchain that decide the binary: a change in any builds into a new folder.

    The paths are in it because the build file PyTorch writes names them (the source, PyTorch's
    headers), and a build file naming other paths is rebuilt: two checkouts, or two PyTorch
    installations, sharing one folder would rebuild each other's kernel on every switch.
    """
    digest = hashlib.sha256(source.read_bytes())
    paths = (str(Path(source).resolve()), os.path.dirname(torch.__file__))
    digest.update(repr((build_flags(), torch.__version__, sys.version_info[:2], sys.platform, paths)).encode())
    return digest.hexdigest()[:16]


@functools.cache
def load_extension(source: Path, prefix: str):
    """The compiled module of ``source`` (built now if needed), or the exception that stopped its build.

    Cached per process; the binary lives in ``cache_dir() / f"{prefix}-{key}"``.
    """
    return build_on_own_thread(source, prefix)


def build_on_own_thread(source: Path, prefix: str):
    """``load_extension`` without its cache: the build (or load) of ``source`` on a thread of its own."""
    # Built on a thread of its own: the first call usually comes from inside a model's forward, and
    # the build machinery keeps some exceptions it caught (setuptools' parser caches them); their
    # tracebacks would hold every calling frame, and with them that forward's activations, for good.
    result = []
    worker = threading.Thread(target=lambda: result.append(_build(source, prefix)), name=f"spikeformers-build-{prefix}")
    worker.start()
    worker.join()
    return result[0]


def _build(source: Path, prefix: str):
    key = build_key(source)
    build_dir = cache_dir() / f"{prefix}-{key}"
    try:
        from torch.utils.cpp_extension import load

        build_dir.mkdir(parents=True, exist_ok=True)
        # torch's build lock is a plain file: a build killed midway (Ctrl-C, SIGKILL) leaves it behind and
        # every later process would wait for it forever. Our own lock is an flock, which the system drops
        # when its holder dies; holding it, any torch lock file left in the folder is a dead build's.
        name = f"spikeformers_{prefix}_{key}"
        with open(build_dir / "spikeformers.flock", "w") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            (build_dir / "lock").unlink(missing_ok=True)
            if not (build_dir / f"{name}.so").exists():  # say why the first run pauses
                print(f"spikeformers: compiling the {source.stem} for this CPU, once (20-60 s); "
                      f"cached in {build_dir}", file=sys.stderr, flush=True)
            return load(
                name=name,
                sources=[str(source)],
                build_directory=str(build_dir),
                extra_cflags=build_flags(),
                extra_ldflags=["-fopenmp"],
                verbose=False,
            )
    except Exception as err:  # no compiler, no ninja, a read-only home: all mean "use another path"
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        print(f"spikeformers: could not build the {source.stem} ({first_line}); using PyTorch's slower "
              "operations instead", file=sys.stderr, flush=True)
        return err
