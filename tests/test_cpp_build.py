"""Building the C++ kernels: the build must never hold on to its caller's frames."""

import gc
import sys
import weakref
from pathlib import Path

import torch

from spikeformers import cpp_build


def test_a_build_started_inside_a_forward_does_not_keep_that_forward_s_tensors(monkeypatch):
    """The first kernel call comes from inside a model's forward. Anything the build machinery keeps
    (setuptools' parser caches the exceptions it catches, with their tracebacks) holds the frames it
    ran in and, through them, every caller's locals: the forward's activations, for the whole run.
    The build runs on its own thread, so what it keeps reaches none of our frames."""
    kept = []

    def build_that_keeps_its_frame(source, prefix):
        kept.append(sys._getframe())  # what a cached traceback amounts to
        return RuntimeError("not built")

    monkeypatch.setattr(cpp_build, "_build", build_that_keeps_its_frame)
    source = Path(__file__)  # any file: nothing is compiled

    def forward():
        activation = torch.ones(1000)
        cpp_build.load_extension(source, "test")
        return weakref.ref(activation)

    try:
        activation = forward()
        gc.collect()
        assert kept, "the build did not run"
        assert activation() is None, "the build kept the caller's frame and its tensor alive"
    finally:
        cpp_build.load_extension.cache_clear()
