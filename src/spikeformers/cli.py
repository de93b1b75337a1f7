"""The command line: ``spikeformers train | eval | models | convert``.

``train``'s flags are generated from :class:`~spikeformers.engine.config.TrainConfig`,
so every recipe key is a flag and the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import types
import typing
from typing import Any, Sequence

from .engine.config import TrainConfig, config_fields, load_config


def _flag_type(annotation: Any):
    """The argparse type of a field annotated like ``int | None`` (annotations are strings here)."""
    hint = typing.get_type_hints(TrainConfig)[annotation]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = args[0]
    return hint


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML recipe; flags override its values")
    for name, field in config_fields().items():
        flag = "--" + name.replace("_", "-")
        kind = _flag_type(name)
        help_text = field.metadata.get("help", "")
        if kind is bool:
            parser.add_argument(flag, dest=name, action="store_true", default=None, help=help_text)
        else:
            shown = "" if field.default is None else f" (default: {field.default})"
            parser.add_argument(flag, dest=name, type=kind, default=None, help=help_text + shown,
                                metavar=name.upper())


# Settings of the machine, not of the run: a resumed run may change them.
RESUMABLE_FLAGS = {"device", "workers"}


def cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .engine.train import TrainingInterrupted, train

    overrides = {k: v for k, v in vars(args).items() if k in config_fields() and v is not None}
    if args.resume:
        fixed = sorted(set(overrides) - RESUMABLE_FLAGS) + (["config"] if args.config else [])
        if fixed:
            raise ValueError(f"--resume continues a run with the config it was started with; drop "
                             f"{', '.join('--' + k.replace('_', '-') for k in fixed)}")
        recipe = Path(args.resume) / "config.yaml"
        if not recipe.is_file():
            raise FileNotFoundError(f"Nothing to resume in {args.resume}: no config.yaml there")
        cfg = load_config(recipe, **overrides, out=args.resume)
    else:
        cfg = load_config(args.config, **overrides)
    try:
        train(cfg, resume=bool(args.resume))
    except TrainingInterrupted as stop:
        print(stop, file=sys.stderr)
        return 128 + stop.signum
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import torch
    from torch.utils.data import DataLoader

    from .data.registry import create_dataset
    from .engine.checkpoint import load_checkpoint
    from .engine.evaluate import evaluate
    from .engine.train import check_compatible, import_plugin, resolve_device
    from .models import create_model

    device = resolve_device(args.device)
    state = load_checkpoint(args.checkpoint)
    config = state.get("config", {})
    import_plugin(config.get("plugin"))
    model = create_model(state["model_name"], **state.get("model_overrides", {}))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise ValueError(f"{args.checkpoint} does not fit model {state['model_name']}: {err}") from None
    model.to(device)
    dataset_name = args.dataset or config.get("dataset")
    dataset = create_dataset(dataset_name, train=False, time_steps=model.time_steps,
                             root=args.data_root or config.get("data_root"))
    check_compatible(model, dataset, state["model_name"], dataset_name)
    loader = DataLoader(dataset, batch_size=args.batch_size)
    with torch.inference_mode():
        result = evaluate(model, loader, device)
    print(f"{state['model_name']} on {dataset_name} test ({result.samples} samples): "
          f"acc1 {result.acc1:.4f}  acc5 {result.acc5:.4f}  loss {result.loss:.4f}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .models import count_parameters, create_model, list_models, model_entry
    from .models.registry import zoo_table

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
        print(f"{name:<{width}}  {count_parameters(create_model(name)):>12,}  {doc}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .models import create_model
    from .models.checkpoints import save_safetensors

    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise ValueError(f"--out must end in .safetensors, got {out}")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    model = create_model(args.model, checkpoint_path=args.official)
    save_safetensors(model, out, metadata={"model_name": args.model, "converted_from": Path(args.official).name})
    print(f"{args.official} -> {out} ({len(model.state_dict())} tensors for {args.model})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spikeformers", allow_abbrev=False,
                                     description="Spiking transformers: train, evaluate, list, convert.")
    sub = parser.add_subparsers(dest="command", required=True)

    p_train = sub.add_parser("train", allow_abbrev=False, help="train a model (no arguments: the built-in demo)")
    p_train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last.pt")
    add_train_flags(p_train)
    p_train.set_defaults(func=cmd_train)

    p_eval = sub.add_parser("eval", help="evaluate a checkpoint on its test set")
    p_eval.add_argument("--checkpoint", required=True, help="a .pt file written by `spikeformers train`")
    p_eval.add_argument("--dataset", help="data set name (default: the one it was trained on)")
    p_eval.add_argument("--data-root", help="folder holding the data set")
    p_eval.add_argument("--batch-size", type=int, default=64)
    p_eval.add_argument("--device", default="auto")
    p_eval.set_defaults(func=cmd_eval)

    p_models = sub.add_parser("models", help="list registered models with parameter counts")
    p_models.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'spikformer*'")
    p_models.add_argument("--markdown", action="store_true", help="print the model zoo table of the README")
    p_models.set_defaults(func=cmd_models)
    p_convert = sub.add_parser("convert", help="convert an authors' checkpoint to this library's safetensors")
    p_convert.add_argument("--model", required=True, help="registered model name the checkpoint is for")
    p_convert.add_argument("--official", required=True, help="the authors' checkpoint (.pth)")
    p_convert.add_argument("--out", required=True, help="output .safetensors file")
    p_convert.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p_convert.set_defaults(func=cmd_convert)
    parser.subcommands = {"train": p_train, "eval": p_eval, "models": p_models, "convert": p_convert}
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse alone would not say which flag was meant
        sub = parser.subcommands[args.command]
        flags = [o for a in sub._actions for o in a.option_strings]
        bad = next((u for u in unknown if u.startswith("-")), unknown[0])
        close = difflib.get_close_matches(bad.split("=")[0], flags, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        sub.error(f"unrecognized argument {bad!r}.{hint}")
    from .engine.train import NonFiniteLossError

    try:
        return args.func(args)
    except NonFiniteLossError as err:
        print(f"spikeformers {args.command}: stopped: {err}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as err:
        print(f"spikeformers {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
