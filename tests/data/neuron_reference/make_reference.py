"""Make the neuron reference data: run STEP's and SpikingJelly 2.0's neurons in float64, save what they give.

Run it in each side environment (see README.md here):

    /work/refenv/step/bin/python tests/data/neuron_reference/make_reference.py step STEP_GIT_DIR
    /work/refenv/sj2/bin/python tests/data/neuron_reference/make_reference.py spikingjelly

STEP's ``cls/models/utils/node.py`` (and the ``surrogate.py`` beside it) are read from the
STEP git checkout at run time, into a temporary folder; nothing of theirs is stored here.
Each case writes ``<case>.pt``: the input ``x`` [T, B, C, H, W], the output gradient, the
reference's spikes and input gradient, its learnable parameters and their gradients (by
the reference's names), and the name and keywords of this library's neuron that must
give the same results (tests/test_neuron_zoo.py reads them).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).parent
T, B, C, H, W = 4, 2, 3, 2, 3


def inputs(seed: int, scale: float = 1.5, shift: float = 0.5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, C, H, W, generator=g, dtype=torch.float64) * scale + shift
    # float32 values: STEP's HD-LIF and GLIF return float32 spikes (.float()), so their backward
    # reads the output gradient in float32
    grad = torch.randn(T, B, C, H, W, generator=g, dtype=torch.float64).float().double()
    return x, grad


def perturb(module: torch.nn.Module, seed: int, names: list[str], spread: float = 0.3):
    """Move the named parameters off their initial values, so their gradients are not special."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name in names:
                p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * spread)


def save(case: str, neuron: str, kwargs: dict, module: torch.nn.Module, x, grad, spikes, params: dict[str, str],
         train: bool = True):
    """params: reference parameter name -> this library's name."""
    named = dict(module.named_parameters())
    record = {
        "neuron": neuron, "kwargs": kwargs, "train": train,
        "x": x.detach(), "grad_output": grad, "spikes": spikes.detach(), "grad_x": x.grad.detach(),
        "params": {ours: named[theirs].detach().clone() for theirs, ours in params.items()},
        "param_grads": {ours: (named[theirs].grad.detach().clone() if named[theirs].grad is not None
                               else torch.zeros_like(named[theirs])) for theirs, ours in params.items()},
    }
    torch.save(record, HERE / f"{case}.pt")
    print(f"{case}: spikes mean {float(spikes.float().mean()):.3f}, |grad_x| {float(x.grad.abs().sum()):.4g}")


def run_step(step_git_dir: str):
    tmp = Path(tempfile.mkdtemp())
    pkg = tmp / "step_utils"
    pkg.mkdir()
    for name in ("node.py", "surrogate.py"):
        text = subprocess.run(["git", f"--git-dir={step_git_dir}", "show", f"HEAD:cls/models/utils/{name}"],
                              check=True, capture_output=True, text=True).stdout
        (pkg / name).write_text(text)
    (pkg / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp))
    node = importlib.import_module("step_utils.node")

    def folded(x):  # STEP's layer-by-layer layout: [T*B, C, H, W]
        return x.reshape(T * B, C, H, W)

    def run(case, neuron, kwargs, module, seed, params=(), spread=0.3, train=True, exact_buffers=None):
        torch.manual_seed(seed)
        module = module.double()
        for attr, value in (exact_buffers or {}).items():  # STEP keeps these as float32 buffers
            owner, name = attr.rsplit(".", 1) if "." in attr else ("", attr)
            target = module.get_submodule(owner) if owner else module
            setattr(target, name, torch.tensor(value, dtype=torch.float64))
        perturb(module, seed, list(params), spread)
        module.train(train)
        x, grad = inputs(seed)
        x.requires_grad_(True)
        out = module(folded(x)).reshape(T, B, C, H, W)
        out.backward(grad)
        save(case, neuron, kwargs, module, x, grad, out, dict(params), train)

    eif_exact = {"delta_T": 1.0, "theta_rh": 0.8, "tau": 2.0}
    run("step_eif", "eif", {}, node.EIFNode(step=T), 1, exact_buffers=eif_exact)
    run("step_eif_detach_mem", "eif", {"detach_mem": True, "theta_rh": 0.5},
        node.EIFNode(step=T, mem_detach=True, theta_rh=0.5), 2, exact_buffers={**eif_exact, "theta_rh": 0.5})
    run("step_ilif", "ilif", {}, node.ILIFNode(step=T), 3)
    run("step_ilif_d4", "ilif", {"D": 4, "v_threshold": 0.5}, node.ILIFNode(step=T, D=4, threshold=0.5), 4)
    run("step_nilif", "nilif", {}, node.NILIFNode(step=T), 5)
    run("step_klif", "klif", {}, node.KLIFNode(step=T), 6, params={"k": "k"})
    run("step_clif", "clif", {}, node.ComplementaryLIFNeuron(step=T), 7)
    run("step_clif_hard", "clif", {"v_reset": 0.0, "decay_input": True},
        node.ComplementaryLIFNeuron(step=T, v_reset=0.0, decay_input=True), 8)
    glif = {"alpha": "alpha_gate", "beta": "beta_gate", "gamma": "gamma_gate", "tau": "tau", "Vth": "Vth",
            "leak": "leak", "conduct": "conduct", "reVth": "reVth"}
    run("step_glif", "glif", {"T": T}, node.GLIFTorch(step=T), 9, params=glif)
    run("step_glif_dynamic_gate", "glif", {"T": T, "static_gate": False}, node.GLIFTorch(step=T, static_gate=False),
        10, params=glif)
    run("step_psn", "psn", {"T": T}, node.PSNTorch(step=T), 11, params={"fc.weight": "weight", "fc.bias": "bias"})
    hd_exact = {"experts.3.delta_T": 1.0, "experts.3.theta_rh": 0.8, "experts.3.tau": 2.0}
    hd_params = {"gate_MoE.weight": "gate.weight", "gate_MoE.bias": "gate.bias", "experts.2.w": "w"}
    hd = {"T": T, "channels": C, "channel_dim": 2, "step_gate_rows": True}
    run("step_hdlif", "hdlif", hd, node.HDLIFNode(C, step=T), 12,
        params=hd_params, exact_buffers=hd_exact)
    run("step_hdlif_eval", "hdlif", hd, node.HDLIFNode(C, step=T), 13,
        params=hd_params, exact_buffers=hd_exact, train=False)


def run_spikingjelly():
    from spikingjelly.activation_based import functional, neuron

    def run(case, ours, kwargs, module, seed, params=(), spread=0.3):
        torch.manual_seed(seed)
        module = module.double()
        perturb(module, seed, list(params), spread)
        functional.reset_net(module) if hasattr(module, "reset") else None
        x, grad = inputs(seed)
        x.requires_grad_(True)
        out = module(x)
        out.backward(grad)
        save(case, ours, kwargs, module, x, grad, out, dict(params))

    m = "m"
    sj = {"variant": "spikingjelly"}
    run("sj_eif", "eif", sj, neuron.EIFNode(step_mode=m), 21)
    run("sj_qif", "qif", {}, neuron.QIFNode(step_mode=m), 22)
    run("sj_qif_soft", "qif", {"v_reset": None, "detach_reset": True},
        neuron.QIFNode(step_mode=m, v_reset=None, detach_reset=True), 23)
    run("sj_izhikevich", "izhikevich", {}, neuron.IzhikevichNode(step_mode=m), 24)
    run("sj_izhikevich_adapting", "izhikevich", {"a": 0.3, "b": 0.2, "tau_w": 3.0},
        neuron.IzhikevichNode(step_mode=m, a=0.3, b=0.2, tau_w=3.0), 25)
    run("sj_klif", "klif", sj, neuron.KLIFNode(step_mode=m), 26, params={"k": "k"})
    run("sj_klif_scale_reset", "klif", {**sj, "scale_reset": True, "v_reset": None},
        neuron.KLIFNode(step_mode=m, scale_reset=True, v_reset=None), 27, params={"k": "k"})
    run("sj_clif", "clif", sj, neuron.ComplementaryLIFNode(step_mode=m), 28)
    glif = {name: ours for name, ours in (("alpha", "alpha_gate"), ("beta", "beta_gate"), ("gamma", "gamma_gate"),
                                          ("tau", "tau"), ("v_threshold", "Vth"), ("linear_decay", "leak"),
                                          ("v_subreset", "reVth"), ("conduct", "conduct"))}
    run("sj_glif", "glif", {**sj, "T": T, "channels": C, "channel_dim": 2}, neuron.GatedLIFNode(T, inplane=C), 29,
        params=glif)
    run("sj_psn", "psn", {**sj, "T": T}, neuron.PSN(T), 30, params={"weight": "weight", "bias": "bias"})
    run("sj_masked_psn", "masked_psn", {"T": T, "k": 2, "lambda_init": 0.5},
        neuron.MaskedPSN(k=2, T=T, lambda_init=0.5, step_mode=m), 31, params={"weight": "weight", "bias": "bias"})
    run("sj_sliding_psn", "sliding_psn", {"k": 3}, neuron.SlidingPSN(k=3, step_mode=m), 32,
        params={"weight": "weight", "bias": "bias"})


if __name__ == "__main__":
    if sys.argv[1:2] == ["step"]:
        run_step(sys.argv[2])
    elif sys.argv[1:2] == ["spikingjelly"]:
        run_spikingjelly()
    else:
        sys.exit("usage: make_reference.py step STEP_GIT_DIR | make_reference.py spikingjelly")
