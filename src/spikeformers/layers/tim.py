"""TIM's parts (Shen et al., "TIM: An Efficient Temporal Interaction Module for Spiking
Transformer", IJCAI 2024): the Temporal Interaction Module and the SSA that applies it to Q.

``TemporalInteraction`` runs over the spike query ``Q [T, B, h, N, d]`` one step
at a time::

    y[0] = Q[0]
    y[t] = out_neuron(alpha * in_neuron(conv(y[t-1])) + (1 - alpha) * Q[t])   t >= 1

where ``conv`` is a Conv1d (kernel 5, padding 2, bias) whose *channels are the
N tokens* and which slides along the d entries of each head, one weight for
every sample and head (``shared/specs/tim.md`` section 4). The recursion feeds
the previous TIM output, not Q[t-1], so the module cannot be written as one
multi-step neuron call per neuron.

The two neurons keep their membranes from step to step within one call. The
library's neurons are stateless (a call integrates a whole ``[T, ...]`` input
from rest), so step t calls each neuron on all of its inputs so far and keeps
the last step's spikes: the same values and the same gradients (through the
membrane too, where the neuron has one) as a neuron carried from step to step,
for any neuron class, at the cost of T(T-1)/2 neuron steps on ``[B, h, N, d]``
instead of T-1 (45 instead of 9 at T=10).

``TimSelfAttention`` is Spikformer's SSA (``layers.attention``) with Q replaced
by TIM(Q) and a projection without bias, as in the authors' code.
"""

from __future__ import annotations

import torch
from torch import nn

from ..neurons import NeuronFactory
from .attention import SpikingSelfAttention
from .folded import LinearBN


def _build(neuron: NeuronFactory, threshold: float | None) -> nn.Module:
    """A neuron with its own threshold, or (None) the factory's, like every other neuron."""
    return neuron() if threshold is None else neuron(v_threshold=threshold)


class TemporalInteraction(nn.Module):
    """TIM on ``[T, B, h, N, d]`` spikes; ``num_tokens`` is N, the interactor's channel count.

    ``in_threshold`` / ``out_threshold``: the thresholds of the two neurons
    (the authors write 0.3 and 0.5); None builds them with the factory's own
    threshold. ``alpha`` weights the interaction against Q[t].
    """

    def __init__(
        self,
        num_tokens: int,
        neuron: NeuronFactory,
        kernel_size: int = 5,
        alpha: float = 0.5,
        in_threshold: float | None = 0.3,
        out_threshold: float | None = 0.5,
    ):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (padding k // 2 keeps the head dimension), got {kernel_size}")
        self.num_tokens = num_tokens
        self.alpha = float(alpha)
        self.interactor = nn.Conv1d(num_tokens, num_tokens, kernel_size, padding=kernel_size // 2, bias=True)
        self.in_neuron = _build(neuron, in_threshold)
        self.out_neuron = _build(neuron, out_threshold)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        if q.dim() != 5 or q.shape[3] != self.num_tokens:
            raise ValueError(
                f"TemporalInteraction expects [T, B, heads, N, head_dim] with N={self.num_tokens} tokens "
                f"(its interactor's channels), got shape {tuple(q.shape)}"
            )
        T, B, H, N, D = q.shape
        outputs = [q[0]]
        interactions: list[torch.Tensor] = []  # in_neuron's inputs so far
        mixtures: list[torch.Tensor] = []  # out_neuron's inputs so far
        for t in range(1, T):
            interactions.append(self.interactor(outputs[-1].reshape(B * H, N, D)).reshape(B, H, N, D))
            u = self.in_neuron(torch.stack(interactions))[-1]
            mixtures.append(self.alpha * u + (1.0 - self.alpha) * q[t])
            outputs.append(self.out_neuron(torch.stack(mixtures))[-1])
        return torch.stack(outputs)

    def extra_repr(self) -> str:
        return f"num_tokens={self.num_tokens}, alpha={self.alpha}"


class TimSelfAttention(SpikingSelfAttention):
    """SSA with ``Y = TIM(Q) K^T V * scale`` and a bias-free projection (``[T, B, N, C]`` tokens).

    ``attn_threshold`` and the TIM's thresholds: a number sets that neuron's
    own threshold; None gives it the factory's threshold, like the rest.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        num_tokens: int,
        neuron: NeuronFactory,
        scale: float = 0.25,
        attn_threshold: float | None = 0.5,
        qkv_bias: bool = False,
        proj_bias: bool = False,
        tim_kernel_size: int = 5,
        tim_alpha: float = 0.5,
        tim_in_threshold: float | None = 0.3,
        tim_out_threshold: float | None = 0.5,
    ):
        super().__init__(dim, num_heads, neuron, scale=scale,
                         attn_threshold=1.0 if attn_threshold is None else attn_threshold, qkv_bias=qkv_bias)
        if attn_threshold is None:
            self.attn_neuron = neuron()
        self.proj = LinearBN(dim, dim, bias=proj_bias)
        self.tim = TemporalInteraction(num_tokens, neuron, kernel_size=tim_kernel_size, alpha=tim_alpha,
                                       in_threshold=tim_in_threshold, out_threshold=tim_out_threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, N, C = x.shape
        q = self.tim(self.split_heads(self.q_neuron(self.q(x))))
        k = self.split_heads(self.k_neuron(self.k(x)))
        v = self.split_heads(self.v_neuron(self.v(x)))
        if N > C // self.num_heads:  # Q (K^T V): [d, d] in the middle instead of [N, N]
            y = q @ (k.transpose(-2, -1) @ v)
        else:
            y = (q @ k.transpose(-2, -1)) @ v
        y = (y * self.scale).transpose(2, 3).reshape(T, B, N, C)
        return self.proj_neuron(self.proj(self.attn_neuron(y)))
