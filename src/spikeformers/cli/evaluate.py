"""``spikeformers eval``: a checkpoint's accuracy on its test set."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    import torch
    from torch.utils.data import DataLoader

    from ..data.registry import create_dataset
    from ..engine.checkpoint import load_checkpoint
    from ..engine.evaluate import evaluate
    from ..engine.train import check_compatible, import_plugin, resolve_device
    from ..models import create_model

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


def register(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("eval", help="evaluate a checkpoint on its test set")
    parser.add_argument("--checkpoint", required=True, help="a .pt file written by `spikeformers train`")
    parser.add_argument("--dataset", help="data set name (default: the one it was trained on)")
    parser.add_argument("--data-root", help="folder holding the data set")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.set_defaults(func=run)
    return parser
