"""``spikeformers neurons``: the registered neurons, where their equations come from, and their defaults."""

from __future__ import annotations

import argparse
import inspect


def neuron_rows() -> list[dict[str, str]]:
    """One row per registered neuron: name, summary, source, fused or not, keywords with defaults, inert ones."""
    from ..neurons import get_neuron_class, list_neurons
    from ..neurons.neuron import Neuron, neuron_defaults
    from ..neurons.spec import FUSED_KINDS

    rows = []
    for name in list_neurons():
        cls = get_neuron_class(name)
        doc = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
        settings = []
        for key, value in neuron_defaults(cls).items():
            if key in ("channels", "channel_dim"):
                continue
            settings.append(f"{key} (required)" if value is inspect.Parameter.empty or
                            (key == "T" and value is None) else f"{key}={value!r}")
        if issubclass(cls, Neuron) and cls.kind in FUSED_KINDS:
            runs = "fused kernels"
        else:
            runs = getattr(cls, "runs_as", "PyTorch loop")
        rows.append({"name": name, "class": cls.__name__, "summary": doc, "source": getattr(cls, "source", ""),
                     "runs": runs, "defaults": ", ".join(settings), "inert": ", ".join(getattr(cls, "inert", ()))})
    return rows


def markdown_table() -> str:
    """The neuron table of the README."""
    lines = ["| neuron | class | equations from | runs as |", "|---|---|---|---|"]
    for row in neuron_rows():
        lines.append(f"| `{row['name']}` | `{row['class']}` | {row['source']} | {row['runs']} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.markdown:
        print(markdown_table())
        return 0
    for row in neuron_rows():
        print(f"{row['name']}  ({row['class']}, {row['runs']})")
        print(f"  {row['summary']}")
        print(f"  source: {row['source']}")
        print(f"  defaults: {row['defaults']}")
        if row["inert"]:
            print(f"  accepted, unused: {row['inert']}")
    return 0


def register(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("neurons", help="list the neurons, their equations' source and defaults")
    parser.add_argument("--markdown", action="store_true", help="print the neuron table of the README")
    parser.set_defaults(func=run)
    return parser
