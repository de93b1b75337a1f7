"""The authors' neuron and batch norm, written out for the tests that re-implement each model
from its spec's layer table (SpikingJelly 0.0.0.0.12 ``MultiStepLIFNode(detach_reset=True)``:
``h = v + (x - v) / tau``, a spike when ``h >= threshold``, hard reset to 0, sigmoid
surrogate with alpha 4; membranes start at 0 in every forward)."""

import torch
import torch.nn.functional as F


class SigmoidSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        s = torch.sigmoid(4 * u)
        return g * 4 * s * (1 - s)


def lif(x, threshold=1.0, tau=2.0):
    """Spikes of a multi-step LIF over dim 0 of ``x``, from v = 0."""
    v, out = torch.zeros_like(x[0]), []
    for t in range(x.shape[0]):
        h = v + (x[t] - v) / tau
        s = SigmoidSpike.apply(h - threshold)
        v = h * (1 - s.detach())
        out.append(s)
    return torch.stack(out)


def batch_norm(x, bn, training):
    """``bn`` applied functionally: batch statistics in training mode, running ones in eval."""
    return F.batch_norm(x, bn.running_mean.clone(), bn.running_var.clone(), bn.weight, bn.bias, training, 0.1, 1e-5)


def record_firing(model):
    """Firing rate of every neuron module, by name, filled in by the model's next forward
    (the spec tests assert that no layer is silent or saturated, so a comparison is not vacuous)."""
    from spikeformers.neurons import LIF

    rates = {}
    for name, m in model.named_modules():
        if isinstance(m, LIF):
            m.register_forward_hook(lambda mod, inp, out, name=name: rates.__setitem__(name, out.mean().item()))
    return rates
