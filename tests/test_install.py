"""What a user gets: the wheel, installed without extras into a fresh virtual environment.

A development environment can hide a missing dependency or package file (the kernels' build tool once
came only with the test extra, so a plain install fell back to the slow reference neurons). This builds the wheel,
installs PyTorch the way ``make`` does (``scripts/install_torch.sh``) and the wheel without extras
into a new venv, and runs it from a folder where the source tree is not importable. It needs the
package registries, as the install itself does.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Installing PyTorch and compiling the kernels take minutes on a loaded machine; the limit only
# stops a hung step, it does not measure speed.
HUNG = 1800

PROBE = """
import json, torch
from spikeformers.neurons import LIF
from spikeformers.neurons.kernels import select_backend
from spikeformers.neurons.kernels import cpu
from spikeformers.layers.pooling import kernel_available
from spikeformers.engine.config import list_recipes
x = torch.rand(4, 3, 8)
print(json.dumps({"backend": select_backend(x), "maxpool": kernel_available(), "spikes": LIF()(x).sum().item(),
                  "multi_state": cpu.multi_state_available(), "recipes": len(list_recipes())}))
"""


def run(command, **kwargs):
    # No PYTHONPATH: a source tree on it would pass for the installed package (pip would even skip the install).
    kwargs.setdefault("env", {k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    done = subprocess.run(command, capture_output=True, text=True, timeout=HUNG, **kwargs)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_the_wheel_without_extras_in_a_fresh_venv_runs_the_compiled_kernels(tmp_path):
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path / "dist"), str(ROOT)])
    (wheel,) = (tmp_path / "dist").glob("spikeformers-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    run(["sh", str(ROOT / "scripts" / "install_torch.sh"), str(venv)])
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)])

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SPIKEFORMERS_CACHE": str(tmp_path / "cache")}
    first = run([str(venv / "bin" / "python"), "-c", PROBE], cwd=tmp_path, env=env)
    result = json.loads(first.stdout.strip().splitlines()[-1])
    assert result["backend"] == "cpu", f"the plain install falls back to {result['backend']}: {first.stderr}"
    assert result["maxpool"] and result["multi_state"] and result["recipes"] > 0
    assert "compiling" in first.stderr  # the first run builds the kernels and says so

    again = run([str(venv / "bin" / "python"), "-c", PROBE], cwd=tmp_path, env=env)
    assert json.loads(again.stdout.strip().splitlines()[-1]) == result
    assert again.stderr == "", f"a cached kernel run prints nothing on stderr, got: {again.stderr}"
    run([str(venv / "bin" / "spikeformers"), "--help"], cwd=tmp_path, env=env)
    package = Path(run([str(venv / "bin" / "python"), "-c", "import spikeformers; print(spikeformers.__file__)"],
                       cwd=tmp_path, env=env).stdout.strip()).parent
    assert (package / "py.typed").is_file(), "type checkers read the annotations only of packages marked py.typed"
