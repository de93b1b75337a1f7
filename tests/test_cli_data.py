"""``spikeformers data prepare | show | options`` through ``spikeformers.cli.main``, on the
built-in dvs_digits and on fake DVS Gesture, N-MNIST and CIFAR-10 folders in the real formats."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from spikeformers.cli import main
from spikeformers.data.visualize import figure_pixels
from test_datasets_cifar10_dvs import make_tree  # noqa: E402
from test_datasets_dvs_gesture import make_gesture  # noqa: E402  (the writers live with the data set tests)
from test_datasets_static import write_cifar10  # noqa: E402
from test_frames_resize import nmnist_tree  # noqa: E402


def pillow():
    """PIL.Image, or skip: pictures need the optional Pillow (GIF) and matplotlib (PNG) packages."""
    return pytest.importorskip("PIL.Image", reason="spikeformers data show writes GIFs with Pillow (optional)")


def matplotlib():
    pillow()
    return pytest.importorskip("matplotlib", reason="spikeformers data show draws PNGs with matplotlib (optional)")


def hue_fractions(path):
    """The fractions of pixels that are clearly orange (ON) and clearly blue (OFF)."""
    red, green, blue = np.moveaxis(np.asarray(pillow().open(path).convert("RGB")).astype(int), -1, 0)
    return float(np.mean((red > 2 * blue + 40) & (red > green))), float(np.mean(blue > 2 * red + 40))


def test_show_png_one_panel_per_step_on_and_off_in_two_colours(tmp_path, capsys):
    matplotlib()
    Image = pillow()
    out = tmp_path / "digit.png"
    assert main(["data", "show", "--dataset", "dvs_digits", "--index", "5", "--time-steps", "4",
                 "--out", str(out), "--dpi", "50"]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == figure_pixels(4, 50) == (400, 125)
    orange, blue = hue_fractions(out)
    assert orange > 0.01 and blue > 0.01, (orange, blue)
    assert "dvs_digits test #5" in capsys.readouterr().out
    big = tmp_path / "sixteen.png"
    assert main(["data", "show", "--dataset", "dvs_digits", "--index", "0", "--train", "--T", "10",
                 "--out", str(big), "--dpi", "40"]) == 0
    with Image.open(big) as image:
        assert image.size == figure_pixels(10, 40) == (640, 180)  # 8 panels a row, two rows


def test_show_gif_one_frame_per_step(tmp_path):
    Image = pillow()
    out = tmp_path / "digit.gif"
    assert main(["data", "show", "--dataset", "dvs_digits", "--index", "2", "--train", "--time-steps", "6",
                 "--out", str(out), "--scale", "5"]) == 0
    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.n_frames == 6 and gif.size == (120, 120)


def test_show_a_gesture_sample_from_a_folder(tmp_path, capsys):
    Image = pillow()
    root, _ = make_gesture(tmp_path / "g")
    out = tmp_path / "gesture.gif"
    assert main(["data", "show", "--dataset", "dvs_gesture", "--root", str(root), "--index", "1", "--test",
                 "--time-steps", "3", "--dataset-option", "expected_samples=null", "--option", "workers=0",
                 "--option", "resize=[64,64]", "--option", "resize_mode=avg", "--out", str(out)]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 3 and gif.size == (256, 256)  # 64x64 after the resize, 4x
    assert "dvs_gesture test #1: right_arm_counter_clockwise (label 4)" in capsys.readouterr().out


def test_show_a_static_image(tmp_path):
    matplotlib()
    Image = pillow()
    write_cifar10(tmp_path)
    png, gif = tmp_path / "cifar.png", tmp_path / "cifar.gif"
    assert main(["data", "show", "--dataset", "cifar10", "--root", str(tmp_path), "--index", "3",
                 "--out", str(png), "--dpi", "60"]) == 0
    assert main(["data", "show", "--dataset", "cifar10", "--root", str(tmp_path), "--index", "3",
                 "--out", str(gif), "--scale", "2"]) == 0
    with Image.open(png) as image:
        assert image.size == figure_pixels(1, 60)
    with Image.open(gif) as image:
        assert image.n_frames == 1 and image.size == (64, 64)
        shown = np.asarray(image.convert("RGB")).astype(int)[::2, ::2]
    from spikeformers.data.static.cifar import CIFAR10

    original = CIFAR10(tmp_path, train=False).image(3).transpose(1, 2, 0).astype(int)
    # the image itself, normalisation undone (up to the GIF's 256-colour palette)
    assert np.abs(shown - original).mean() < 12
    assert np.corrcoef(shown.ravel(), original.ravel())[0, 1] > 0.95


def test_prepare_builds_the_cache_of_both_splits(tmp_path, capsys):
    root = nmnist_tree(tmp_path / "nmnist")
    for digit in range(10):  # nmnist_tree writes only Test; add a Train part
        (root / "Train" / str(digit)).mkdir(parents=True)
        (root / "Train" / str(digit) / "00000.bin").write_bytes((root / "Test" / str(digit) / "00000.bin").read_bytes())
    argv = ["data", "prepare", "--dataset", "nmnist", "--root", str(root), "--T", "5", "--split-by", "time",
            "--workers", "2", "--option", "expected_recordings=false"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    caches = sorted((root / "spikeformers_frames").iterdir())
    assert len(caches) == 2 and all("nmnist_T5_time" in c.name for c in caches)
    assert sorted(len(list(c.rglob("*.npz"))) for c in caches) == [10, 20]
    assert all(str(c) in text for c in caches)
    frames = np.load(next(caches[0].rglob("*.npz")))["frames"]
    assert frames.shape == (5, 2, 34, 34) and frames.dtype == np.uint8  # compact counts


def test_prepare_static_and_options_listing(tmp_path, capsys):
    write_cifar10(tmp_path)
    assert main(["data", "prepare", "--dataset", "cifar10", "--root", str(tmp_path)]) == 0
    assert "nothing to cache" in capsys.readouterr().out
    assert main(["data", "options", "--dataset", "dvs_gesture"]) == 0
    listed = capsys.readouterr().out
    assert "resize_mode = 'bilinear'" in listed and "split_by = 'number'" in listed


def test_options_are_listed_with_what_each_does(capsys):
    from spikeformers.data.registry import dataset_option_help

    assert main(["data", "options", "--dataset", "cifar10_dvs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    described = dataset_option_help("cifar10_dvs")
    assert len(lines) == len(described)
    for line, (key, text) in zip(lines, described.items()):
        assert line.startswith(f"{key} = ") and line.endswith(text), line
    assert any(line.startswith("split_by = 'number'") and "time_bins" in line for line in lines)


def test_the_split_by_choices_are_the_frame_modes():
    from spikeformers.cli.data import SPLIT_MODES as choices
    from spikeformers.data import SPLIT_MODES

    assert choices == SPLIT_MODES


def test_a_data_root_that_does_not_exist_is_one_line_then_where_to_get_it(tmp_path, capsys):
    assert main(["data", "prepare", "--dataset", "nmnist", "--root", str(tmp_path / "typo")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"spikeformers data: error: N-MNIST: the data root '{tmp_path / 'typo'}' does not exist")
    assert "garrickorchard.com" in lines[1]


@pytest.mark.parametrize("argv, message", [
    (["--out", "x.jpg"], "must end in .png or .gif"),
    (["--index", "999"], "--index 999 is outside the 450 samples"),
    (["--option", "seed"], "--dataset-option needs KEY=VALUE"),
    (["--option", "resize=32"], "has no option 'resize'"),
])
def test_show_errors_name_the_culprit(tmp_path, capsys, argv, message):
    base = {"--out": str(tmp_path / "x.png"), "--index": "0"}
    for flag, value in zip(argv[::2], argv[1::2]):
        base[flag] = value
    args = ["data", "show", "--dataset", "dvs_digits", "--time-steps", "2"]
    for flag, value in base.items():
        args += [flag, value]
    if "--option" in argv:
        args += ["--option", argv[argv.index("--option") + 1]]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_missing_data_set_names_the_files_and_where_to_get_them(tmp_path, capsys):
    assert main(["data", "prepare", "--dataset", "dvs_gesture", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "trials_to_train.txt" in err and "research.ibm.com" in err


def test_a_missing_optional_package_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL.Image", None)  # as if Pillow were not installed
    assert main(["data", "show", "--dataset", "dvs_digits", "--index", "0", "--time-steps", "2",
                 "--out", str(tmp_path / "x.gif")]) == 2
    assert "writing a GIF of a sample needs Pillow, which is not installed: pip install pillow" in capsys.readouterr().err


# --------------------------------------------------------------------------- a killed `data prepare`

def process_identity(pid):
    """``(pid, start time)`` of a live process, or None when gone or a zombie (a pid can be reused;
    the pair cannot). The command name in /proc/PID/stat may hold spaces: fields follow the last ')'."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else (pid, fields[19])


def children(parent):
    """The live processes whose parent is ``parent``."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.isdigit() and int(fields[1]) == parent and fields[0] != "Z":
            found.append(process_identity(int(entry)))
    return [identity for identity in found if identity is not None]


def wait_until_gone(identities, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [identity for identity in identities if process_identity(identity[0]) == identity]
        if not left:
            return []
        time.sleep(0.05)
    return left


def kill_left(identities):
    for pid, start in identities:  # only the processes this test started, by their own pid
        if process_identity(pid) == (pid, start):
            os.kill(pid, signal.SIGKILL)


HANGING_BUILD = """
import os, sys, time
from spikeformers.data.datasets.frame_cache import FrameCache

def hang(source):
    open(os.path.join(sys.argv[1], f"worker-{os.getpid()}"), "w").close()
    time.sleep(600)  # a worker busy with a long recording when its parent is killed

FrameCache(os.path.join(sys.argv[1], "cache")).build([("a/0", "x"), ("a/1", "y")], hang, workers=2)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers follow their parent on Linux (prctl)")
def test_cache_workers_die_with_their_killed_parent(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", HANGING_BUILD, str(tmp_path)])
    workers = []
    try:
        deadline = time.monotonic() + 120  # generous: the parent imports torch first, on a busy machine
        while len(workers) < 2 and time.monotonic() < deadline and parent.poll() is None:
            workers = [process_identity(int(p.name.split("-")[1])) for p in tmp_path.glob("worker-*")]
            workers = [identity for identity in workers if identity is not None]
            time.sleep(0.05)
        assert len(workers) == 2, f"the pool did not start (parent exit code {parent.poll()})"
        parent.kill()
        parent.wait()
        # They die as the parent does; the 30 s margin is for a loaded machine. Without the fix they
        # sleep on for 600 s (and a real worker waits forever on its job queue).
        assert wait_until_gone(workers, timeout=30) == []
    finally:
        parent.kill()
        kill_left(workers)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers follow their parent on Linux (prctl)")
def test_data_prepare_killed_leaves_no_workers(tmp_path):
    root = make_tree(tmp_path / "cifar10dvs", per_class=100)  # 1,000 recordings: the pool runs a while
    command = [sys.executable, "-m", "spikeformers.cli", "data", "prepare", "--dataset", "cifar10_dvs",
               "--root", str(root), "--time-steps", "4", "--workers", "2", "--option", "expected_per_class=null"]
    prepare = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    try:
        while not workers and prepare.poll() is None:  # until the pool is up
            workers = children(prepare.pid)
            time.sleep(0.01)
        assert workers, "data prepare ended before its pool was seen: make the data set larger"
        time.sleep(0.2)  # both workers busy
        workers = children(prepare.pid)
        prepare.send_signal(signal.SIGKILL)
        prepare.wait()
        assert wait_until_gone(workers, timeout=30) == []  # generous, for a loaded machine
    finally:
        prepare.kill()
        kill_left(workers)


def test_workers_on_a_data_set_without_a_frame_cache_is_a_note_not_an_error(tmp_path, capsys):
    """`data prepare --workers N` sizes a frame-cache build; the built-in digits build none, so the
    flag is said not to apply and the data set is still prepared."""
    code = main(["data", "prepare", "--dataset", "dvs_digits", "--time-steps", "4", "--workers", "2",
                 "--root", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0
    assert "--workers does not apply to dvs_digits (it builds no frame cache)" in err
    assert err.count("--workers does not apply") == 1
