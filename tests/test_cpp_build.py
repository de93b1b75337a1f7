"""Building the C++ kernels: never holding on to the caller's frames, and saying when a build fails."""

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
        cpp_build.build_on_own_thread(source, "test")
        return weakref.ref(activation)

    activation = forward()
    gc.collect()
    assert kept, "the build did not run"
    assert activation() is None, "the build kept the caller's frame and its tensor alive"


def test_a_kernel_that_cannot_be_built_is_reported_and_returned_as_the_error(tmp_path, monkeypatch, capsys):
    """No compiler, a broken source, a read-only cache: the caller gets the exception to fall back on,
    and the user a line saying why things will be slower."""
    source = tmp_path / "broken_kernel.cpp"
    source.write_text("this is not C++\n")
    monkeypatch.setenv("SPIKEFORMERS_CACHE", str(tmp_path / "cache"))
    result = cpp_build.build_on_own_thread(source, "broken")
    assert isinstance(result, Exception)
    err = capsys.readouterr().err
    assert "compiling the broken_kernel" in err and "could not build the broken_kernel" in err
