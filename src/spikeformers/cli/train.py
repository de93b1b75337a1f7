"""``spikeformers train``: its flags are generated from :class:`~spikeformers.engine.config.TrainConfig`,
so every recipe key is a flag and the two cannot drift apart."""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path
from typing import Any

from ..engine.config import TrainConfig, config_fields, load_config, load_yaml, matching_recipe


def _flag_type(annotation: Any):
    """The argparse type of a field annotated like ``int | None`` (annotations are strings here)."""
    hint = typing.get_type_hints(TrainConfig)[annotation]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = args[0]
    return hint


def parse_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as YAML, so ``64`` is a number and ``[64, 64]`` a list."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), load_yaml(value, f"the option {key.strip()}")


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML recipe (a file, or a shipped one such as spikformer/cifar10_dvs); "
                                         "flags override its values")
    for name, field in config_fields().items():
        flags = ["--" + name.replace("_", "-"), *field.metadata.get("aliases", [])]
        kind = _flag_type(name)
        help_text = field.metadata.get("help", "")
        if kind is bool:
            parser.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif kind is dict:  # --dataset-option split=braincog --dataset-option resize=64
            parser.add_argument(flags[0].removesuffix("s"), dest=name, type=parse_option, action="append",
                                default=None, metavar="KEY=VALUE", help=help_text)
        else:
            shown = "" if field.default is None else f" (default: {field.default})"
            parser.add_argument(*flags, dest=name, type=kind, default=None, help=help_text + shown,
                                metavar=name.upper())




def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The run's config: the recipe (``--config``, the one matching ``--model`` and ``--dataset``, or the
    resumed run's) with the flags given on top."""
    overrides = {k: v for k, v in vars(args).items() if k in config_fields() and v is not None}
    for key in ("dataset_options", "model_options"):
        if key in overrides:
            overrides[key] = dict(overrides[key])
    if args.resume:
        from ..engine.resume import RESUMABLE

        fixed = sorted(set(overrides) - set(RESUMABLE)) + (["config"] if args.config else [])
        if fixed:
            allowed = ", ".join("--" + k.replace("_", "-") for k in RESUMABLE)
            raise ValueError(f"--resume continues a run with the config it was started with, changing only "
                             f"{allowed}; drop {', '.join('--' + k.replace('_', '-') for k in fixed)}")
        recipe = Path(args.resume) / "config.yaml"
        if not recipe.is_file():
            raise FileNotFoundError(f"Nothing to resume in {args.resume}: no config.yaml there")
        return load_config(recipe, **overrides, out=args.resume)
    recipe = args.config
    if recipe is None and args.model and args.dataset:  # `--model M --dataset D`: the papers' recipe
        recipe = matching_recipe(args.model, args.dataset)
        if recipe is not None:
            print(f"using the recipe {recipe.parent.name}/{recipe.name} (flags override it)")
    return load_config(recipe, **overrides)


def run(args: argparse.Namespace) -> int:
    from ..engine.stopping import TrainingInterrupted
    from ..engine.train import train

    cfg = config_from_args(args)
    try:
        train(cfg, resume=bool(args.resume))
    except TrainingInterrupted as stop:
        print(stop, file=sys.stderr)
        return 128 + stop.signum
    return 0


def register(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("train", allow_abbrev=False, help="train a model (no arguments: the built-in demo)")
    parser.add_argument("--resume", metavar="RUN_DIR", help=(
        "continue the run in RUN_DIR from its last checkpoint; only the machine's and the schedule's settings "
        "may change (--device, --workers, --epochs, --cooldown-epochs, --lr, --min-lr, --warmup-epochs, "
        "--warmup-lr, --clip-grad, --save-every), recorded in its config.yaml and run.json"))
    add_train_flags(parser)
    parser.set_defaults(func=run)
    return parser
