"""Prediction on files (``spikeformers.Predictor``, ``spikeformers predict``).

Recordings are written in real formats (SpikingJelly's ``.npz`` events, the
N-MNIST binary, AEDAT 2.0); the predictor must make each into exactly the
frames the model's data set serves, give the model's own probabilities, report
a damaged file on one line and still predict the others.
"""

import json
import struct

import numpy as np
import pytest
import torch

import spikeformers
from spikeformers.cli import main
from spikeformers.data import EventFolderDataset, create_dataset
from spikeformers.engine.checkpoint import load_checkpoint, save_checkpoint
from spikeformers.export import Predictor, Preprocessing
from spikeformers.models import create_model
from trained_tiny import briefly_trained, save_run_checkpoint


def nmnist_bytes(events) -> bytes:
    return b"".join(bytes([int(e["x"]), int(e["y"]), (int(e["p"]) << 7) | (int(e["t"]) >> 16),
                           (int(e["t"]) >> 8) & 0xFF, int(e["t"]) & 0xFF]) for e in events)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A run folder of a briefly trained model, and 4 DVS-digits test recordings written as files: two as
    SpikingJelly .npz events, two as N-MNIST binaries."""
    folder = tmp_path_factory.mktemp("predict")
    model = briefly_trained()
    save_run_checkpoint(model, folder / "run" / "best.pt")
    test_set = create_dataset("dvs_digits", train=False, time_steps=4)
    paths, indices = [], [0, 1, 2, 3]
    for i in indices:
        events = test_set.events(i)
        if i % 2 == 0:
            path = folder / f"digit{i}.npz"
            np.savez(path, t=events["t"], x=events["x"], y=events["y"], p=events["p"])
        else:
            path = folder / f"digit{i}.bin"
            path.write_bytes(nmnist_bytes(events))
        paths.append(path)
    frames = torch.stack([test_set[i][0] for i in indices], dim=1)
    with torch.no_grad():
        expected = model(frames).softmax(1)
    return folder, paths, expected


def test_the_predictor_gives_the_models_probabilities_for_npz_and_nmnist_recordings(setup):
    folder, paths, expected = setup
    results = spikeformers.Predictor(folder / "run").predict(paths)
    assert [r.path for r in results] == [str(p) for p in paths] and not any(r.error for r in results)
    got = torch.stack([r.probabilities for r in results])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    for result, probabilities in zip(results, expected):
        top = result.top(5)
        assert [name for name, _ in top] == [str(i) for i in probabilities.topk(5).indices.tolist()]
        assert all(a[1] >= b[1] for a, b in zip(top, top[1:]))


def test_an_onnx_file_predicts_what_the_checkpoint_predicts(setup, tmp_path):
    pytest.importorskip("onnxruntime")
    folder, paths, expected = setup
    onnx_path = tmp_path / "tiny.onnx"
    assert main(["export", "--checkpoint", str(folder / "run"), "--out", str(onnx_path)]) == 0
    results = Predictor(onnx_path).predict(paths)
    assert not any(r.error for r in results)
    torch.testing.assert_close(torch.stack([r.probabilities for r in results]), expected, rtol=0, atol=1e-5)
    assert [r.top(1)[0][0] for r in results] == [str(i) for i in expected.argmax(1).tolist()]


def test_a_damaged_file_gets_one_line_and_the_others_are_still_predicted(setup, tmp_path, capsys):
    folder, paths, expected = setup
    truncated = tmp_path / "cut.bin"
    truncated.write_bytes(paths[1].read_bytes()[:-2])  # a record cut short
    garbage = tmp_path / "noise.npz"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    missing = tmp_path / "absent.npz"
    argv = ["predict", "--checkpoint", str(folder / "run" / "best.pt"), str(paths[0]), str(truncated),
            str(garbage), str(missing), str(paths[2])]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    errors = err.strip().splitlines()
    assert len(errors) == 4 and errors[-1] == "spikeformers predict: 3 of 5 files failed"
    for path, line in zip((truncated, garbage, missing), errors):
        assert line.startswith("spikeformers predict: error: ") and str(path) in line
    assert f"{paths[0]}:" in out and f"{paths[2]}:" in out and str(truncated) not in out
    best = str(expected[0].argmax().item())
    assert out.split(f"{paths[0]}:\n")[1].splitlines()[0].split()[0] == best
    assert len(out.split(f"{paths[0]}:\n")[1].splitlines()[:5]) == 5


def test_json_output_lists_the_top_classes_and_the_errors(setup, tmp_path, capsys):
    folder, paths, expected = setup
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x00\x01")
    assert main(["predict", "--checkpoint", str(folder / "run"), "--json", "--top", "3", str(paths[3]),
                 str(bad)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "spikformer_tiny"
    first, second = report["results"]
    assert first["path"] == str(paths[3]) and len(first["top"]) == 3
    assert first["top"][0]["class"] == str(expected[3].argmax().item())
    assert first["top"][0]["probability"] == pytest.approx(expected[3].max().item(), abs=1e-6)
    assert second["path"] == str(bad) and str(bad) in second["error"]


def test_a_checkpoint_without_stored_preprocessing_takes_it_from_its_config(setup, tmp_path):
    folder, paths, expected = setup
    old = save_run_checkpoint(briefly_trained(steps=0), tmp_path / "old.pt", preprocessing=False)
    assert "preprocessing" not in load_checkpoint(old)
    predictor = Predictor(old)
    assert predictor.preprocessing == Preprocessing.from_dict(load_checkpoint(folder / "run" / "best.pt")
                                                             ["preprocessing"], "x")
    assert not any(r.error for r in predictor.predict(paths))


def aedat2_file(path, events):
    """AEDAT 2.0 of DVS128 addresses; raw (x, y) as SpikingJelly reads them: x = 127 - x_raw, y = 127 - y_raw."""
    header = b"#!AER-DAT2.0\r\n# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n"
    body = b"".join(struct.pack(">II", ((127 - y) << 8) | ((127 - x) << 1) | p, t) for t, x, y, p in events)
    path.write_bytes(header + body)
    return path


def test_a_cifar10_dvs_checkpoint_frames_aedat_recordings_as_its_data_set_does(tmp_path):
    """An older checkpoint (no stored preprocessing) of a model trained on CIFAR10-DVS resized to 32x32:
    the predictor reads the AEDAT 2.0 file on the 128x128 sensor in SpikingJelly's orientation, frames it
    by event count and resizes it, giving the frames the data set itself serves."""
    rng = np.random.default_rng(0)
    count = 3000
    events = list(zip(np.sort(rng.integers(0, 10**6, count)).tolist(), rng.integers(0, 128, count).tolist(),
                      rng.integers(0, 128, count).tolist(), rng.integers(0, 2, count).tolist()))
    recording = aedat2_file(tmp_path / "cifar10_cat_0.aedat", events)
    torch.manual_seed(0)
    overrides = dict(img_size=32, time_steps=4, embed_dim=32, depth=1, num_heads=2)
    model = create_model("spikformer_dvs", **overrides)
    save_checkpoint(tmp_path / "dvs.pt", {
        "model_name": "spikformer_dvs", "model_overrides": overrides, "model": model.state_dict(),
        "config": {"dataset": "cifar10_dvs", "dataset_options": {"resize": 32, "split_by": "number"}}})
    predictor = Predictor(tmp_path / "dvs.pt")
    served = EventFolderDataset(name="cifar10_dvs", samples=[("cat", recording.name, recording)], classes=["cat"],
                                sensor_size=(128, 128), time_steps=4, split_by="number",
                                reader={"format": "aedat2", "orientation": "spikingjelly"}, resize=32)
    frames = predictor.frames(recording)
    assert frames.shape == (4, 2, 32, 32) and torch.equal(frames, served[0][0])
    (result,) = predictor.predict([recording])
    assert result.error is None and [name for name, _ in result.top(1)][0] in predictor.classes
    assert predictor.classes[3] == "cat"  # CIFAR10-DVS's own class names


def test_a_static_image_model_predicts_from_an_image_file(tmp_path):
    from PIL import Image

    from spikeformers.data.static.encoding import check_statistics, encode

    pixels = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "image.png")
    torch.manual_seed(0)
    overrides = dict(img_size=32, time_steps=2, embed_dim=32, depth=1, num_heads=2)
    model = create_model("spikformer_cifar10", **overrides)
    save_checkpoint(tmp_path / "cifar.pt", {"model_name": "spikformer_cifar10", "model_overrides": overrides,
                                            "model": model.state_dict(), "config": {"dataset": "cifar10"}})
    predictor = Predictor(tmp_path / "cifar.pt")
    pre = predictor.preprocessing
    assert pre.kind == "image" and pre.mean == pytest.approx((0.4914, 0.4822, 0.4465))
    expected = encode(torch.from_numpy(pixels).permute(2, 0, 1), *check_statistics(pre.mean, pre.std), 2)
    assert torch.equal(predictor.frames(tmp_path / "image.png"), expected)
    (result,) = predictor.predict([tmp_path / "image.png"])
    assert result.error is None and len(result.top(5)) == 5


def test_predict_refuses_a_file_that_is_no_model(tmp_path, capsys):
    notes = tmp_path / "notes.onnx"
    notes.write_text("hello")
    assert main(["predict", "--checkpoint", str(notes), str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(notes) in err and "not a readable ONNX model" in err


def test_a_real_nmnist_recording_is_framed_on_the_nmnist_sensor(tmp_path):
    """The N-MNIST sample a real ATIS camera wrote, with an older N-MNIST checkpoint (settings from its config)."""
    from test_readers import real_sample

    from spikeformers.data import read_event_frames

    recording = real_sample("sample_nmnist.bin")
    torch.manual_seed(0)
    overrides = dict(img_size=34, time_steps=4, embed_dim=32, depth=1, num_heads=2)
    model = create_model("spikformer_dvs", **overrides)
    save_checkpoint(tmp_path / "nmnist.pt", {"model_name": "spikformer_dvs", "model_overrides": overrides,
                                             "model": model.state_dict(), "config": {"dataset": "nmnist"}})
    predictor = Predictor(tmp_path / "nmnist.pt")
    frames = predictor.frames(recording)
    expected = torch.from_numpy(read_event_frames(recording, 4, "number", sensor_size=(34, 34))).float()
    assert torch.equal(frames, expected) and frames.sum() == 4325
    (result,) = predictor.predict([recording])
    assert result.error is None and predictor.classes == tuple(str(d) for d in range(10))
    with torch.no_grad():
        torch.testing.assert_close(result.probabilities, model.eval()(frames[:, None]).softmax(1)[0])


def test_an_onnx_file_of_a_fixed_batch_predicts_fewer_files_than_its_batch(tmp_path):
    """QKFormer with its authors' batch leak exports at one batch size; fewer files are filled up to it."""
    pytest.importorskip("onnxruntime")
    from spikeformers.export import to_onnx

    from test_compile_export import small_model

    model = small_model("qkformer_dvs").eval()
    rng = np.random.default_rng(3)
    paths = []
    for i in range(3):
        t = np.sort(rng.integers(0, 10**5, 400))
        path = tmp_path / f"r{i}.npz"
        np.savez(path, t=t, x=rng.integers(0, 32, 400), y=rng.integers(0, 32, 400), p=rng.integers(0, 2, 400))
        paths.append(path)
    pre = Preprocessing("events", time_steps=2, channels=2, input_size=(32, 32), sensor_size=(32, 32))
    to_onnx(model, tmp_path / "qk.onnx", preprocessing=pre, batch=4)
    predictor = Predictor(tmp_path / "qk.onnx")
    assert predictor.fixed_batch == 4
    results = predictor.predict(paths)
    assert not any(r.error for r in results)
    batch = torch.stack([pre.frames(p) for p in paths] + [torch.zeros(2, 2, 32, 32)], dim=1)
    with torch.no_grad():
        expected = model(batch)[:3].softmax(1)
    torch.testing.assert_close(torch.stack([r.probabilities for r in results]), expected, rtol=0, atol=1e-5)


def test_a_weights_only_checkpoint_of_0_1_0_needs_the_preprocessing_given(tmp_path):
    """A checkpoint with no config cannot tell how its input is made: one line naming it, unless given."""
    from pathlib import Path

    old = Path(__file__).parent / "data" / "v0_1_0" / "spikformer_dvs.pt"  # 16x16, T=2, no config
    with pytest.raises(ValueError, match=rf"{old} stores no preprocessing and no config"):
        Predictor(old)
    rng = np.random.default_rng(4)
    np.savez(tmp_path / "r.npz", t=np.arange(300), x=rng.integers(0, 16, 300), y=rng.integers(0, 16, 300),
             p=rng.integers(0, 2, 300))
    pre = Preprocessing("events", time_steps=2, channels=2, input_size=(16, 16), sensor_size=(16, 16))
    (result,) = Predictor(old, preprocessing=pre).predict([tmp_path / "r.npz"])
    assert result.error is None and result.classes == tuple(str(i) for i in range(10))
