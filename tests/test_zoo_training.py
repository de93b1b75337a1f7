"""Every registered configuration trains: one short epoch of real training on real frames of the
built-in DVSDigits data set (64 recordings, 24x24, 2 channels, T=2, batches of 16), shrunk to tiny
widths and depths, ends with a finite loss and moved parameters.

Each configuration keeps its own options (erode, input pooling, embedding style, quirks, ...); only
the sizes are overridden (``TINY`` below), so that the whole file runs in under a minute on two
cores. The configurations that need a side divisible by 16 (``SENSOR_32``) train on the same
digits recorded on a 32x32 sensor (``DVSDigits(sensor_size=(32, 32))``) instead of a resize.
"""

import fnmatch

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from spikeformers.data import DVSDigits
from spikeformers.models import (CMLSpikformer, CMLSpikingformer, QKFormer, SGLFormer, SpikeDrivenTransformer,
                                 Spikformer, SpikformerV2, Spikingformer, TIMSpikformer, create_model, list_models)
from spikeformers.models.e_spikeformer import ESpikeFormer
from spikeformers.models.meta_spikeformer import MetaSpikeFormer
from spikeformers.models.spiking_wavelet import SpikingWaveletTransformer
from spikeformers.models.spikformer_semm import SpikformerSEMM
from spikeformers.models.spikingresformer import SpikingResformer
from spikeformers.models.registry import model_entry

from zoo_selection import zoo_params  # noqa: E402  (each family's first two in CI, the rest -m slow)

TIME_STEPS, SAMPLES, BATCH = 2, 64, 16
# four 2x2 downsamplings that must divide exactly; SpikingResformer's ImageNet stem (by 4) before a 4x4 patch;
# the Spiking Wavelet Transformer's Haar transform needs a power-of-2 token grid
SENSOR_32 = ("qkformer_dvs", "qkformer_gesture", "spikformer_semm_imagenet_*", "spikformer_v2_*",
             "spikingresformer_imagenet_*", "swt_*")

# Per family, the size overrides that make a model tiny; the data set fixes input and classes.
TINY = {
    Spikformer: dict(embed_dim=16, depth=1, num_heads=2),
    TIMSpikformer: dict(embed_dim=16, depth=1, num_heads=2),
    SpikformerV2: dict(embed_dim=16, depth=1, num_heads=2),
    Spikingformer: dict(embed_dim=16, depth=1, num_heads=2),
    CMLSpikformer: dict(embed_dim=16, depth=1, num_heads=2),
    CMLSpikingformer: dict(embed_dim=16, depth=1, num_heads=2),
    SpikeDrivenTransformer: dict(embed_dim=16, depth=1, num_heads=2),
    QKFormer: dict(embed_dim=16, depths=(1, 1), num_heads=2),
    SGLFormer: dict(embed_dim=16, depth=1, num_heads=2),
    MetaSpikeFormer: dict(embed_dims=(8, 16, 16, 16), depths=(1, 1, 1, 1, 1), num_heads=2),
    SpikingResformer: dict(dims=(8, 16, 24), depths=(1, 1, 1), num_heads=(1, 2, 3), group_size=8),
    SpikformerSEMM: dict(embed_dim=16, depth=1, expert_dim=8),
    SpikingWaveletTransformer: dict(embed_dim=16, depth=1),
    ESpikeFormer: dict(embed_dims=(8, 16, 16, 16), depths=(1, 1, 1, 1, 1), num_heads=2),
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: a second intra-op thread adds only synchronisation, and on a busy machine its
    barrier waits cost more than the work (measured here: 20x the CPU time of one thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    """The first 64 training recordings, by sensor side: 24 (the data set's own) or 32."""
    sets = {}
    for side in (24, 32):
        data = DVSDigits(train=True, time_steps=TIME_STEPS, sensor_size=(side, side))
        assert (data.in_channels, data.num_classes) == (2, 10)
        sets[side] = Subset(data, range(SAMPLES))
    return sets


def test_every_model_family_has_tiny_settings():
    families = {model_entry(name).model_class for name in list_models()}
    assert families <= set(TINY), f"add tiny settings for {families - set(TINY)}"


@pytest.mark.parametrize("name", zoo_params(full_size=False))
def test_registered_model_trains_one_epoch_on_dvs_digits(name, digits):
    torch.manual_seed(0)
    side = 32 if any(fnmatch.fnmatch(name, pattern) for pattern in SENSOR_32) else 24
    model = create_model(name, img_size=side, in_channels=2, num_classes=10, time_steps=TIME_STEPS,
                         **TINY[model_entry(name).model_class]).train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for frames, labels in DataLoader(digits[side], batch_size=BATCH, shuffle=True):
        logits = model(frames.transpose(0, 1))  # [B, T, C, H, W] -> time first
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert len(losses) == SAMPLES // BATCH
    assert all(torch.isfinite(torch.tensor(losses))), losses
    moved = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
    # the optimiser moved nearly every parameter tensor (a neuron that never fires in this short run
    # can leave a few without a gradient)
    assert len(moved) >= 0.9 * len(before), sorted(set(before) - set(moved))
