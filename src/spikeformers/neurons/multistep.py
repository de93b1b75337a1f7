"""The multi-step neuron recurrence and the settings every kernel of it takes.

Every neuron in the library (LIF, PLIF, IF, soft or hard reset) is this one
recurrence with different settings. Forward, per element, starting from
``v[-1] = v_reset`` (0 for soft reset)::

    h[t] = charge(v[t-1], x[t])            # LIF / PLIF / IF
    s[t] = 1 if h[t] >= v_threshold else 0
    v[t] = h[t] * (1 - s[t]) + v_reset * s[t]   # hard reset
    v[t] = h[t] - v_threshold * s[t]            # soft reset (v_reset=None)

Backward is the hand-derived adjoint of the same loop. Several kernels compute
it (``kernels/``: the Python reference, a fused C++ kernel for the CPU, Triton
for CUDA); ``kernels.multistep`` picks one by device, or the one named by
``SPIKEFORMERS_NEURON_BACKEND``. Half-precision inputs are integrated in
float32 by all of them: a bf16 membrane rounds away small inputs and flips spikes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .surrogate import SurrogateFn


@dataclass(frozen=True)
class NeuronSpec:
    """The static settings of one neuron; hashable so kernels can cache by it."""

    kind: str  # 'lif' (leak 1/tau), 'plif' (leak sigmoid(w), learnable), 'if' (no leak)
    tau: float
    v_threshold: float
    v_reset: float | None  # None: soft reset (subtract the threshold)
    decay_input: bool
    detach_reset: bool
    detach_mem: bool
    surrogate: SurrogateFn
    alpha: float

    @property
    def rest(self) -> float:
        """Membrane potential at rest and the level the leak decays towards."""
        return 0.0 if self.v_reset is None else self.v_reset
