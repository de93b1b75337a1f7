"""``spikeformers eval``: a checkpoint's top-1 / top-5 and per-class accuracy on a test set,
with a confusion-matrix picture and a per-class CSV.

``--checkpoint`` is a checkpoint file or a run folder (its ``best.pt``, or
``last.pt`` when it has none; the command says which it read). A checkpoint
never chooses code to run: the plugin module that registers a user's own
model or data set is imported only when named by ``--plugin``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    import torch

    from ..data import create_dataset, time_major_loader
    from ..engine.checkpoint import load_checkpoint, run_checkpoint
    from ..engine.config import import_plugin
    from ..engine.device import resolve_device
    from ..engine.evaluate import check_compatible, evaluate, model_from_checkpoint
    from ..engine.plots import plot_confusion, write_per_class
    from ..models import list_models

    device = resolve_device(args.device)
    checkpoint = run_checkpoint(args.checkpoint)
    if checkpoint != Path(args.checkpoint):
        print(f"evaluating {checkpoint}" + (" (its best epoch's weights; name last.pt for the latest)"
                                            if checkpoint.name == "best.pt" else " (the run has no best.pt yet)"))
    state = load_checkpoint(checkpoint)
    config = state.get("config") if isinstance(state.get("config"), dict) else {}
    import_plugin(args.plugin)
    if isinstance(state.get("model_name"), str) and state["model_name"] not in list_models():
        recorded = config.get("plugin")
        hint = (f"; its run imported plugin {recorded!r}: pass --plugin {recorded} if you trust that module"
                if recorded and not args.plugin else "; pass --plugin MODULE, the module that registers it")
        raise ValueError(f"{checkpoint} holds model {state['model_name']!r}, which is not registered{hint}")
    model = model_from_checkpoint(state, checkpoint, ema=args.ema).to(device)
    dataset_name = args.dataset or config.get("dataset")
    same_data = dataset_name == config.get("dataset")
    options = dict(config.get("dataset_options", {})) if same_data else {}
    dataset = create_dataset(dataset_name, train=False, time_steps=model.time_steps,
                             root=args.data_root or (config.get("data_root") if same_data else None), **options)
    check_compatible(model, dataset, state["model_name"], dataset_name)
    loader = time_major_loader(dataset, batch_size=args.batch_size)
    with torch.inference_mode():
        result = evaluate(model, loader, device, model.num_classes)
    print(f"{state['model_name']}{' (EMA)' if args.ema else ''} on {dataset_name} test ({result.samples} samples): "
          f"acc1 {result.acc1:.4f}  acc5 {result.acc5:.4f}  loss {result.loss:.4f}")
    names = getattr(dataset, "classes", None)
    names = list(names) if names is not None and len(names) == model.num_classes else [str(i) for i in range(model.num_classes)]
    width = max(len("class"), *(len(n) for n in names))
    print(f"{'class':<{width}}  samples  accuracy")
    for name, samples, accuracy in zip(names, result.confusion.sum(1).tolist(), result.per_class_accuracy.tolist()):
        print(f"{name:<{width}}  {samples:7d}  {accuracy:8.4f}")
    out = Path(args.out) if args.out else checkpoint.parent / f"eval-{dataset_name}"
    out.mkdir(parents=True, exist_ok=True)
    title = f"{state['model_name']} on {dataset_name} test: top-1 {result.acc1:.4f}"
    plot_confusion(result.confusion, out / "confusion.png", names, title)
    write_per_class(result, out / "per_class.csv", names)
    print(f"confusion matrix: {out / 'confusion.png'}; per-class accuracy: {out / 'per_class.csv'}")
    return 0


def register(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("eval", help="evaluate a checkpoint on its test set (per class, confusion matrix)")
    parser.add_argument("--checkpoint", required=True, metavar="FILE_OR_RUN_DIR",
                        help="a .pt file written by `spikeformers train`, or its run folder: its best.pt (the best "
                             "epoch's weights), or last.pt when it has none")
    parser.add_argument("--dataset", help="data set name (default: the one it was trained on)")
    parser.add_argument("--data-root", help="folder holding the data set")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--ema", action="store_true", help="evaluate the checkpoint's weight average")
    parser.add_argument("--plugin", metavar="MODULE",
                        help="Python module to import first, registering your own model or data set; a "
                             "checkpoint never imports one itself, even the one its run used")
    parser.add_argument("--out", help="folder for confusion.png and per_class.csv "
                                      "(default: eval-DATASET beside the checkpoint)")
    parser.set_defaults(func=run)
    return parser
