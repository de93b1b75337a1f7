"""The energy estimate the papers use: ``E = E_MAC x MACs + E_AC x ACs``.

The default constants are the 45 nm CMOS figures for 32-bit floating-point
operations (Horowitz, "Computing's energy problem", ISSCC 2014): a
multiply-accumulate 4.6 pJ (multiply 3.7 + add 0.9), an accumulate 0.9 pJ,
the values Spikformer, the Spike-driven Transformer, QKFormer and their
successors all quote. It is an estimate of arithmetic alone: memory access,
data movement and neuron updates are not in it, which is why the constants
are printed with every figure.
"""

from __future__ import annotations

from dataclasses import dataclass

PJ_PER_MJ = 1e9


@dataclass(frozen=True)
class EnergyModel:
    """Energy per operation in picojoules, and where the figures come from."""

    e_mac_pj: float = 4.6
    e_ac_pj: float = 0.9
    source: str = "45 nm CMOS, 32-bit float (Horowitz, ISSCC 2014)"

    def __post_init__(self):
        for name in ("e_mac_pj", "e_ac_pj"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"EnergyModel: {name} must be a non-negative number of picojoules, got {value!r}")

    def millijoules(self, macs: float, acs: float) -> float:
        """``E_MAC x macs + E_AC x acs`` in mJ."""
        return (self.e_mac_pj * macs + self.e_ac_pj * acs) / PJ_PER_MJ

    def describe(self) -> str:
        return (f"E = E_MAC x MACs + E_AC x ACs, E_MAC = {self.e_mac_pj:g} pJ, "
                f"E_AC = {self.e_ac_pj:g} pJ ({self.source})")
