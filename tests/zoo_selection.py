"""Which registered configurations the default suite builds, and which only `-m slow` does.

Every configuration is built, run and trained by the parametrised zoo tests; in the default
suite (CI) each family's first event-data and first static-image configuration run (not the
ImageNet-sized ones where a test builds full-size models), and the others, whose parts are the
same at other sizes, T or class counts, are marked slow. That keeps
each family's parts under test in CI while the zoo grows, without a minute per large model.
"""

import pytest

from spikeformers.models import list_models
from spikeformers.models.registry import model_entry

# Full-size ImageNet and HARDVS models (and Meta-SpikeFormer's 31M-parameter DVS one) take
# seconds to a minute each on 2 cores.
HEAVY = {n for n in list_models()
         if "imagenet" in n or model_entry(n).info.dataset in ("ImageNet", "HARDVS")} | {"meta_spikformer_dvs", "spikingresformer_dvs", "spikingresformer_gesture"}


def _is_event(name: str) -> bool:
    return model_entry(name).info.dataset not in ("CIFAR10", "CIFAR100", "ImageNet")


def fast(full_size: bool) -> set[str]:
    """Per family (paper), its first event-data and its first static-image configuration, leaving out
    the HEAVY ones when the test builds models at full size."""
    chosen: dict[tuple[str, bool], str] = {}
    for name in list_models():
        if full_size and name in HEAVY:
            continue
        chosen.setdefault((model_entry(name).info.paper, _is_event(name)), name)
    return set(chosen.values())


def zoo_params(full_size: bool) -> list:
    """Every registered name as a pytest parameter; those outside ``fast(full_size)`` marked slow."""
    keep = fast(full_size)
    return [n if n in keep else pytest.param(n, marks=pytest.mark.slow) for n in list_models()]
