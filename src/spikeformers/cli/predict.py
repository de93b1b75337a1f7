"""``spikeformers predict``: the top classes of event recordings (or images) by a run's checkpoint or an
exported ONNX file.

Each file is framed, resized and normalised as the model's data set served
its samples in training (``spikeformers.export.Predictor``). A file that
cannot be read gets one line naming it and what is wrong, on stderr; the
others are still predicted, and the exit status is 1 when any failed.
"""

from __future__ import annotations

import argparse
import json
import sys


def run(args: argparse.Namespace) -> int:
    from ..engine.config import import_plugin
    from ..engine.device import resolve_device
    from ..export.predict import Predictor

    import_plugin(args.plugin)
    if args.top < 1:
        raise ValueError(f"--top must be >= 1; got {args.top}")
    predictor = Predictor(args.checkpoint, ema=args.ema, device=resolve_device(args.device),
                          batch_size=args.batch_size)
    results = predictor.predict(args.recordings)
    failed = [result for result in results if result.error is not None]
    if args.json:
        print(json.dumps({"model": predictor.model_name, "source": str(predictor.checkpoint),
                          "results": [result.to_dict(args.top) for result in results]}, indent=2))
    else:
        print(predictor.describe())
        for result in results:
            if result.error is None:
                print(f"{result.path}:")
                width = max(len(name) for name, _ in result.top(args.top))
                for name, probability in result.top(args.top):
                    print(f"  {name:<{width}}  {probability:.4f}")
    for result in failed:
        print(f"spikeformers predict: error: {result.error}", file=sys.stderr)
    if failed:
        print(f"spikeformers predict: {len(failed)} of {len(results)} files failed", file=sys.stderr)
    return 1 if failed else 0


def register(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("predict", help="classify recordings with a checkpoint or an ONNX file (top-5)")
    parser.add_argument("--checkpoint", required=True, metavar="FILE",
                        help="a .pt file or run folder of `spikeformers train`, or a .onnx file of "
                             "`spikeformers export`")
    parser.add_argument("recordings", nargs="+", metavar="RECORDING",
                        help="event recordings (AEDAT 2/3.1/4, N-MNIST .bin, .npz events) or images, for a "
                             "model trained on static images")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--top", type=int, default=5, help="how many classes to show (default 5)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu", help="where a checkpoint's model runs (default cpu)")
    parser.add_argument("--ema", action="store_true", help="use the checkpoint's weight average")
    parser.add_argument("--plugin", metavar="MODULE",
                        help="Python module to import first, registering your own model")
    parser.set_defaults(func=run)
    return parser
