"""CML Spikformer and CML Spikingformer (Zhou et al., "Enhancing the Performance of Transformer-based
Spiking Neural Networks by SNN-optimized Downsampling with Precise Gradient Backpropagation",
arXiv 2305.05954; zhouchenlin2096/Spikingformer-CML).

CML changes only where the stem's max-pools sit: each pool takes the batch
norm's output, before the neuron (conv-BN-pool-neuron), where Spikformer and
Spikingformer pool the neuron's spikes. Max-pooling spikes passes a gradient
to one spike of the window however many fired; pooling the membrane passes it
to the largest potential, the one that decides the pooled spike. The rest of
each model, its parameters and its checkpoint layout are its base family's
(``Spikformer``, ``Spikingformer`` with ``cml=True``). The authors' LIF has
tau 1.75 in their CIFAR10-DVS and Gesture files and 2.0 in the CIFAR and
ImageNet ones. Their repository holds the code of CML Spikingformer for every
data set and of CML Spikformer for CIFAR only; the other CML Spikformer
configurations are Spikformer's own files with the CML stem (docs/models.md,
"CML").
"""

from __future__ import annotations

from typing import Any

from .registry import Config, register_configs
from .spikformer import Spikformer
from .spikingformer import Spikingformer


class CMLSpikformer(Spikformer):
    """Spikformer with the CML stem (``cml=True``)."""

    # The authors' CIFAR file names the SPS stages block1..block4 (Spikformer's files: proj_conv, proj_conv1, ...).
    official_renames = (
        (r"^patch_embed\.block([1-9])_(conv|bn)\.(.+)$", lambda m: f"patch_embed.stages.{int(m[1]) - 1}.{m[2]}.{m[3]}"),
        *Spikformer.official_renames,
    )

    def __init__(self, cml: bool = True, **kwargs: Any):
        super().__init__(cml=cml, **kwargs)


class CMLSpikingformer(Spikingformer):
    """Spikingformer with the CML stem (``cml=True``); LIF tau 1.75, the authors' event-data constant."""

    neuron_defaults = {"tau": 1.75}

    def __init__(self, cml: bool = True, **kwargs: Any):
        super().__init__(cml=cml, **kwargs)


PAPER = "CML (arXiv 2305.05954; Frontiers in Neuroscience 2024)"
README = "authors' README (zhouchenlin2096/Spikingformer-CML)"
LOG = "authors' training log (origin_logs/)"
_TAU2 = {"neuron_kwargs": {"tau": 2.0}}  # the authors' CIFAR and ImageNet files
_DVS = dict(img_size=128, in_channels=2, num_classes=10, time_steps=16, embed_dim=256, depth=2, num_heads=16)
_CIFAR = dict(img_size=32, in_channels=3, num_classes=10, time_steps=4, embed_dim=384, depth=4, num_heads=12)
_IMAGENET = dict(img_size=224, in_channels=3, num_classes=1000, time_steps=4, depth=8, attn_scale=0.125)

# Spikformer's files with the CML stem (its ImageNet head counts); the CIFAR ones are the authors' CML_Spikformer.py.
_SF_DVS = {**_DVS, "attn_scale": 0.25}
_SF_CIFAR = {**_CIFAR, "attn_scale": 0.125, "qkv_bias": True, "sps_pool_stages": (2, 3), "init": "trunc_normal"}
register_configs(CMLSpikformer, PAPER, {
    "cml_spikformer_dvs": Config(_SF_DVS, "CIFAR10-DVS", "80.9", README, note="79.2% at T=10; Spikformer's DVS file"),
    "cml_spikformer_dvs_t10": Config({**_SF_DVS, "time_steps": 10}, "CIFAR10-DVS", "79.2", README),
    "cml_spikformer_gesture": Config({**_SF_DVS, "num_classes": 11}, "DVS128 Gesture", "98.6", README,
                                     note="97.6% at T=10"),
    "cml_spikformer_cifar10": Config(_SF_CIFAR, "CIFAR10", "96.04", README + "; log: 96.03",
                                     note="4-384, 400 epochs"),
    "cml_spikformer_cifar100": Config({**_SF_CIFAR, "num_classes": 100}, "CIFAR100", "80.02", README,
                                      note="4-384, 400 epochs"),
    # the README's smaller CIFAR models (300 epochs); head counts not published (none changes a parameter count)
    "cml_spikformer_cifar10_4_256": Config({**_SF_CIFAR, "embed_dim": 256, "num_heads": 8}, "CIFAR10", "94.82", README,
                                           note="4-256; heads not published (8)"),
    "cml_spikformer_cifar10_2_384": Config({**_SF_CIFAR, "depth": 2}, "CIFAR10", "95.63", README, note="2-384"),
    "cml_spikformer_cifar100_4_256": Config({**_SF_CIFAR, "num_classes": 100, "embed_dim": 256, "num_heads": 8},
                                            "CIFAR100", "77.64", README, note="4-256; heads not published (8)"),
    "cml_spikformer_cifar100_2_384": Config({**_SF_CIFAR, "num_classes": 100, "depth": 2}, "CIFAR100", "78.75", README,
                                            note="2-384"),
    "cml_spikformer_imagenet_8_384": Config({**_IMAGENET, "embed_dim": 384, "num_heads": 6}, "ImageNet", "72.73", README),
    "cml_spikformer_imagenet_8_512": Config({**_IMAGENET, "embed_dim": 512, "num_heads": 8}, "ImageNet", "75.61", README),
    "cml_spikformer_imagenet_8_768": Config({**_IMAGENET, "embed_dim": 768, "num_heads": 12}, "ImageNet", "77.34",
                                            README + "; log: 77.35"),
})

# The authors' Spikingformer files with the CML stem. CIFAR: convs pooled after 2 and 3 only; heads 12 for
# CIFAR10, 8 for CIFAR100 (their cifar10.yml and cifar100.yml); ImageNet: 8 heads (imagenet.yml).
_SG_CIFAR = {**_CIFAR, **_TAU2, "tokenizer_pool_stages": (2, 3)}
_SG_IMAGENET = {**_IMAGENET, **_TAU2, "num_heads": 8}
register_configs(CMLSpikingformer, PAPER, {
    "cml_spikingformer_dvs": Config(_DVS, "CIFAR10-DVS", "81.4", README + "; log: 81.4", note="80.5% at T=10"),
    "cml_spikingformer_dvs_t10": Config({**_DVS, "time_steps": 10}, "CIFAR10-DVS", "80.5", README),
    "cml_spikingformer_gesture": Config({**_DVS, "num_classes": 11}, "DVS128 Gesture", "98.6", README,
                                        note="97.2% at T=10"),
    "cml_spikingformer_cifar10": Config(_SG_CIFAR, "CIFAR10", "95.95", README + "; log: 95.97",
                                        note="4-384, 400 epochs"),
    "cml_spikingformer_cifar100": Config({**_SG_CIFAR, "num_classes": 100, "num_heads": 8}, "CIFAR100", "80.37",
                                         README + "; log: 80.37", note="4-384, 400 epochs"),
    "cml_spikingformer_cifar10_4_256": Config({**_SG_CIFAR, "embed_dim": 256, "num_heads": 8}, "CIFAR10", "94.94",
                                              README, note="4-256; heads not published (8)"),
    "cml_spikingformer_cifar10_2_384": Config({**_SG_CIFAR, "depth": 2}, "CIFAR10", "95.54", README, note="2-384"),
    "cml_spikingformer_cifar100_4_256": Config({**_SG_CIFAR, "num_classes": 100, "embed_dim": 256, "num_heads": 8},
                                               "CIFAR100", "78.19", README, note="4-256; heads not published (8)"),
    "cml_spikingformer_cifar100_2_384": Config({**_SG_CIFAR, "num_classes": 100, "depth": 2, "num_heads": 8},
                                               "CIFAR100", "78.87", README, note="2-384"),
    "cml_spikingformer_imagenet_8_384": Config({**_SG_IMAGENET, "embed_dim": 384}, "ImageNet", "74.35",
                                               README + "; log: 74.36"),
    "cml_spikingformer_imagenet_8_512": Config({**_SG_IMAGENET, "embed_dim": 512}, "ImageNet", "76.54",
                                               README + "; log: 76.54"),
    "cml_spikingformer_imagenet_8_768": Config({**_SG_IMAGENET, "embed_dim": 768}, "ImageNet", "77.64",
                                               README, note="78.46% fine-tuned at 288x288"),
})
