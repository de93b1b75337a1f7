"""``spikeformers convert``: an authors' checkpoint to this library's safetensors."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from ..models import create_model
    from ..models.checkpoints import save_safetensors

    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise ValueError(f"--out must end in .safetensors, got {out}")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    model = create_model(args.model, checkpoint_path=args.official)
    save_safetensors(model, out, metadata={"model_name": args.model, "converted_from": Path(args.official).name})
    print(f"{args.official} -> {out} ({len(model.state_dict())} tensors for {args.model})")
    return 0


def register(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("convert", help="convert an authors' checkpoint to this library's safetensors")
    parser.add_argument("--model", required=True, help="registered model name the checkpoint is for")
    parser.add_argument("--official", required=True, help="the authors' checkpoint (.pth)")
    parser.add_argument("--out", required=True, help="output .safetensors file")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.set_defaults(func=run)
    return parser
