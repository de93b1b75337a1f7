"""A briefly trained spikformer_tiny and its run checkpoint, for the export and predict tests."""

import copy
import functools

import torch
from torch import nn

from spikeformers.data import create_dataset
from spikeformers.engine.checkpoint import save_checkpoint
from spikeformers.export import describe_input
from spikeformers.models import create_model


def briefly_trained(steps: int = 5, batch: int = 32) -> nn.Module:
    """A fresh copy of :func:`trained`: the test modules that use it train once between them."""
    return copy.deepcopy(trained(steps, batch))


@functools.lru_cache(maxsize=None)
def trained(steps: int, batch: int) -> nn.Module:
    """spikformer_tiny after a few AdamW steps on dvs_digits, its batch-norm statistics then measured on
    128 training samples (a few steps leave the running averages near their initial values, and the
    eval-mode model would give every input the same answer)."""
    train_set = create_dataset("dvs_digits", train=True, time_steps=4)
    torch.manual_seed(0)
    model = create_model("spikformer_tiny")
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(0)).tolist()
    for step in range(steps):
        picked = [train_set[i] for i in order[step * batch:(step + 1) * batch]]
        frames, labels = torch.stack([f for f, _ in picked], dim=1), torch.tensor([y for _, y in picked])
        loss = nn.functional.cross_entropy(model(frames), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the calibration batches
    with torch.no_grad():
        for start in range(0, 128, 64):
            model(torch.stack([train_set[i][0] for i in order[start:start + 64]], dim=1))
    return model.eval()


def save_run_checkpoint(model: nn.Module, path, preprocessing: bool = True):
    """What ``spikeformers train`` writes for this model, the optimiser state aside."""
    state = {"model_name": "spikformer_tiny", "model_overrides": {}, "model": model.state_dict(),
             "config": {"dataset": "dvs_digits", "dataset_options": {}, "model": "spikformer_tiny"}}
    if preprocessing:
        state["preprocessing"] = describe_input("dvs_digits", {}, model).to_dict()
    save_checkpoint(path, state)
    return path
