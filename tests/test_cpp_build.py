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


def test_two_checkouts_of_one_source_build_in_folders_of_their_own(tmp_path):
    """PyTorch's build file names the source it compiles: a folder shared by two checkouts would be
    rebuilt (25-90 s) each time the other one loads. The source's path is in the folder's key."""
    content = Path(cpp_build.__file__).with_name("neurons").joinpath("kernels", "cpu_kernel.cpp").read_bytes()
    first, second = tmp_path / "a" / "kernel.cpp", tmp_path / "b" / "kernel.cpp"
    for path in (first, second):
        path.parent.mkdir()
        path.write_bytes(content)
    assert cpp_build.build_key(first) != cpp_build.build_key(second)
    assert cpp_build.build_key(first) == cpp_build.build_key(tmp_path / "b" / ".." / "a" / "kernel.cpp")


def test_the_library_build_records_its_command_naming_the_source_and_the_support_header():
    """A library kernel's folder keeps the compiler call that made it (for a user's bug report), and
    that call names this checkout's source and the header every library kernel includes."""
    import pytest

    from spikeformers.neurons.kernels import cpu

    if not cpu.available():
        pytest.skip("the CPU kernel cannot be built here")
    command = (cpp_build.cache_dir() / f"cpu-{cpu._build_key()}" / "build_command.txt").read_text()
    assert str(cpu.SOURCE) in command.split() and str(cpp_build.SUPPORT_HEADER.parent) in command.split()
    assert all(flag in command.split() for flag in cpp_build.build_flags())


def test_a_library_kernel_returns_its_errors_as_one_line_naming_the_kernel():
    """A check inside the C++ (here a window too large for a one-byte place) comes back as a Python
    error naming the kernel, never as a crash of the process."""
    import pytest

    from spikeformers.layers import pooling

    if not pooling.kernel_available():
        pytest.skip("the max-pool kernel cannot be built here")
    kernel = pooling._extension()
    x = torch.zeros(1, 1, 40, 40)
    with pytest.raises(RuntimeError, match=r"^max-pool kernel: check failed: .*window 17x17 does not fit"):
        kernel.forward(x, 17, 17, 1, 1, 0, 0)


def test_changing_the_support_header_builds_every_library_kernel_anew(tmp_path, monkeypatch):
    """The header is compiled into every library kernel, so it is part of every key."""
    source = tmp_path / "kernel.cpp"
    source.write_text("// a kernel\n")
    header = tmp_path / "cpp_support.h"
    header.write_text("// one version\n")
    monkeypatch.setattr(cpp_build, "SUPPORT_HEADER", header)
    before = cpp_build.build_key(source)
    header.write_text("// another version\n")
    assert cpp_build.build_key(source) != before
