"""Writes this folder's 0.1.0 checkpoints and the logits 0.1.0 computes from them (see README.md).

Run it with spikeformers 0.1.0 on the path: PYTHONPATH=<0.1.0 checkout>/src python make.py
"""

import torch

from spikeformers.engine.checkpoint import save_checkpoint
from spikeformers.models import create_model
from spikeformers.neurons import PLIF

# One small model per family: (registered name, input side, neuron, size overrides).
FAMILIES = [
    ("spikformer_dvs", 16, "plif", dict(embed_dim=8, depth=1, num_heads=2)),
    ("tim_dvs", 16, "lif", dict(embed_dim=8, depth=1, num_heads=2)),
    ("spikformer_v2_dvs", 16, "lif", dict(embed_dim=8, depth=1, num_heads=2, scs_stages=3)),
    ("spikingformer_dvs", 16, "plif", dict(embed_dim=8, depth=1, num_heads=2)),
    ("spike_driven_dvs", 16, "plif", dict(embed_dim=8, depth=1, num_heads=2)),
    ("qkformer_dvs", 16, "lif", dict(embed_dim=16, depths=(1, 1), num_heads=2)),
    ("sglformer_dvs", 24, "lif", dict(embed_dim=8, depth=1, num_heads=2, num_global=1)),
    ("meta_spikformer_dvs", 16, "lif", dict(embed_dims=(4, 8, 8, 8), depths=(1, 0, 0, 1, 0), num_heads=2)),
]
T, B = 2, 2

expected = {}
for name, side, neuron, sizes in FAMILIES:
    overrides = dict(img_size=side, in_channels=2, num_classes=10, time_steps=T, neuron=neuron, **sizes)
    torch.manual_seed(0)
    model = create_model(name, **overrides)
    for m in model.modules():
        if isinstance(m, PLIF):  # a tau of its own per neuron, so that each PLIF parameter must land in its place
            m.w.data = 0.5 * torch.randn(())
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):  # statistics and gains under which neurons fire
            m.weight.data.uniform_(1.0, 2.0)
            m.bias.data.uniform_(0.0, 0.5)
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.05, 0.2)
    frames = torch.randint(0, 4, (T, B, 2, side, side), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    save_checkpoint(f"{name}.pt", {"model_name": name, "model_overrides": overrides, "model": model.state_dict(),
                                   "epoch": 1})
    # float64, so that no spike flips on a rounding difference of a later kernel
    model.double()
    with torch.no_grad():
        expected[name] = {"frames": frames, "eval": model.eval()(frames.double()),
                          "train": model.train()(frames.double())}
torch.save(expected, "logits.pt")
