"""docs/custom_model.md works as written: its module builds, registers and trains by name."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A guard against a hung process, not a speed check: far beyond what these commands take on a loaded
# 2-core machine, so only a process that never ends can reach it.
HUNG = 3600


def docs_module() -> str:
    text = (ROOT / "docs" / "custom_model.md").read_text()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def test_the_documented_model_registers_and_trains_by_name(tmp_path):
    (tmp_path / "my_models.py").write_text(docs_module())
    assert len(docs_module().strip().splitlines()) <= 45, "the example should stay short"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "spikeformers", "train", "--plugin", "my_models",
                             "--model", "qk_driven_tiny", "--epochs", "2", "--batch-size", "32", "--time-steps", "2", "--out", str(out)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=HUNG)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "qk_driven_tiny" and summary["test_acc1"] > 0.15  # chance is 0.10

    evaluate = [sys.executable, "-m", "spikeformers", "eval", "--checkpoint", str(out / "last.pt")]
    refused = subprocess.run(evaluate, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=HUNG)
    assert refused.returncode == 2 and "pass --plugin my_models if you trust that module" in refused.stderr
    evaluated = subprocess.run([*evaluate, "--plugin", "my_models"], capture_output=True, text=True, env=env,
                               cwd=tmp_path, timeout=HUNG)
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"acc1 {summary['test_acc1']:.4f}" in evaluated.stdout


def test_the_documented_model_uses_plif_everywhere(tmp_path, monkeypatch):
    (tmp_path / "my_models_check.py").write_text(docs_module().replace('"qk_driven_tiny"', '"qk_driven_check"'))
    monkeypatch.syspath_prepend(str(tmp_path))
    from spikeformers.models import create_model, registry
    from spikeformers.neurons import LIF, PLIF

    import my_models_check  # noqa: F401  (registers qk_driven_check)

    try:
        model = create_model("qk_driven_check")
        neurons = [m for m in model.modules() if isinstance(m, LIF)]
        assert neurons and all(type(n) is PLIF for n in neurons)
    finally:  # leave the registry as the README's zoo table expects it
        registry._MODELS.pop("qk_driven_check", None)
