"""Batch norm folded into the convolution or linear layer before it, for inference.

In eval mode a batch norm is a per-channel affine map, so ``bn(conv(x))`` is
one convolution with scaled weights and a shifted bias (PyTorch's
``fuse_conv_bn_eval`` / ``fuse_linear_bn_eval``). Folded here: the library's
Conv-BN units (``ConvUnit``, ``ConvBN``), whose conv feeds its BN directly,
and ``LinearBN``. A BN elsewhere (after a sum, padded, shared) stays as it
is. The folded layer computes the same map up to float rounding; a spike
whose membrane sits within that rounding of the threshold may flip.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from ..layers.fold import ConvUnit, LinearBN


def fold_batchnorm(model: nn.Module) -> list[str]:
    """Fold, in place, every BN that directly follows its unit's conv or linear layer (``model`` must be
    in eval mode); the folded BNs' module paths."""
    if model.training:
        raise ValueError("batch norm folds only in eval mode (its running statistics): call model.eval() first")
    folded = []
    for path, module in model.named_modules():
        if isinstance(module, ConvUnit) and isinstance(getattr(module, "bn", None), nn.BatchNorm2d):
            steps = module.order
            if steps.index("bn") == steps.index("conv") + 1:  # nothing between them
                module.conv = fuse_conv_bn_eval(module.conv, module.bn)
                module.bn = nn.Identity()
                folded.append(f"{path}.bn")
        elif isinstance(module, LinearBN) and isinstance(module.bn, nn.BatchNorm1d):
            module.linear = fuse_linear_bn_eval(module.linear, module.bn)
            module.bn = nn.Identity()
            folded.append(f"{path}.bn")
    return folded
