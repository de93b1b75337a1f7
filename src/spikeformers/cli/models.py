"""``spikeformers models``: the registered models with their parameter counts."""

from __future__ import annotations

import argparse
import sys


def run(args: argparse.Namespace) -> int:
    from ..models import count_parameters, list_models, model_entry
    from ..models.registry import shape_only, zoo_table

    if args.markdown:
        print(zoo_table(args.pattern))
        return 0
    names = list_models(args.pattern)
    if not names:
        print(f"No model matches {args.pattern!r}", file=sys.stderr)
        return 1
    width = max(len(n) for n in names)
    print(f"{'model':<{width}}  {'parameters':>12}  description")
    for name in names:
        doc = (model_entry(name).__doc__ or "").strip().splitlines()[0]
        print(f"{name:<{width}}  {count_parameters(shape_only(name)):>12,}  {doc}")
    return 0


def register(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("models", help="list registered models with parameter counts")
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'spikformer*'")
    parser.add_argument("--markdown", action="store_true", help="print the model zoo table of the README")
    parser.set_defaults(func=run)
    return parser
