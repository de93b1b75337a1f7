"""``spikeformers data prepare | show | options`` through ``spikeformers.cli.main``, on the
built-in dvs_digits and on fake DVS Gesture, N-MNIST and CIFAR-10 folders in the real formats."""

import sys

import numpy as np
import pytest

from spikeformers.cli import main
from spikeformers.data.visualize import figure_pixels
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
    from spikeformers.data.cifar import CIFAR10

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
