"""``spikeformers export``: a run's checkpoint as an ONNX file (any model) or a NIR graph (models built
only of what NIR expresses).

``--checkpoint`` is a checkpoint file or a run folder, as for ``eval``. The
ONNX file is unrolled over T with a dynamic batch, batch norm folded, and
carries the input layout and the preprocessing in its metadata
(``spikeformers.export.onnx``); the NIR file is the ``nir`` package's HDF5
(``spikeformers.export.nir``), or one line naming the first operation NIR
cannot express.
"""

from __future__ import annotations

import argparse
from pathlib import Path

FORMATS = ("onnx", "nir")


def run(args: argparse.Namespace) -> int:
    from ..engine.config import import_plugin
    from ..export.predict import load_run_model
    from ..export.preprocessing import checkpoint_preprocessing

    import_plugin(args.plugin)
    out = Path(args.out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; name the file to write")
    model, state, checkpoint = load_run_model(args.checkpoint, ema=args.ema)
    name = state["model_name"]
    preprocessing = checkpoint_preprocessing(state, model, checkpoint)
    if args.format == "onnx":
        from ..export.onnx import to_onnx

        to_onnx(model, out, preprocessing=preprocessing, model_name=name, fold=not args.no_fold, opset=args.opset,
                batch=args.batch)
    else:
        from ..export.nir import write_nir

        write_nir(model, out)
    T, C, (H, W) = model.time_steps, model.in_channels, model.img_size
    print(f"wrote {out}: {name} from {checkpoint}{' (EMA)' if args.ema else ''} as {args.format.upper()}, input "
          f"[T={T}, B, C={C}, H={H}, W={W}]; {preprocessing.describe()}")
    return 0


def register(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("export", help="export a checkpoint as ONNX (unrolled over T) or NIR")
    parser.add_argument("--checkpoint", required=True, metavar="FILE_OR_RUN_DIR",
                        help="a .pt file written by `spikeformers train`, or its run folder (its best.pt)")
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="onnx (any model) or nir (models "
                        "of convolutions, linears, LIF/IF neurons, pooling and sums only)")
    parser.add_argument("--out", required=True, metavar="FILE", help="the file to write (atomically)")
    parser.add_argument("--ema", action="store_true", help="export the checkpoint's weight average")
    parser.add_argument("--no-fold", action="store_true", help="ONNX: keep batch norm as its own operator")
    parser.add_argument("--batch", type=int, metavar="N", help="ONNX: a fixed batch size (default: dynamic); "
                        "needed by a model whose neuron runs across the batch (QKFormer's ssa_batch_leak)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset version (default 17)")
    parser.add_argument("--plugin", metavar="MODULE",
                        help="Python module to import first, registering your own model")
    parser.set_defaults(func=run)
    return parser
