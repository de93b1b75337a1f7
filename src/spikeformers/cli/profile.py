"""``spikeformers profile``: firing rates, operation counts, parameters and energy of a model, as a table,
JSON and pictures (see ``spikeformers.analysis``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def build_model(name: str | None, checkpoint: str | None):
    """The model to profile: ``name`` untrained, or with ``checkpoint`` (a run's .pt, safetensors or the authors')."""
    from ..engine.checkpoint import load_checkpoint
    from ..engine.evaluate import model_from_checkpoint
    from ..models import create_model

    if checkpoint is None:
        if name is None:
            raise ValueError("give --model NAME (and optionally --checkpoint FILE)")
        return create_model(name)
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"No checkpoint at {checkpoint}")
    try:
        state = load_checkpoint(checkpoint)
    except ValueError:  # not a run's checkpoint: weights to load into the named model
        if name is None:
            raise ValueError(f"{checkpoint} is not a spikeformers run checkpoint; "
                             "name its model with --model") from None
        return create_model(name, checkpoint_path=checkpoint)
    if name is not None and name != state.get("model_name"):
        raise ValueError(f"{checkpoint} holds a {state.get('model_name')} model, not {name}")
    return model_from_checkpoint(state, checkpoint)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..analysis import EnergyModel, profile_model
    from ..analysis.plots import plot_report
    from ..engine.train import import_plugin, resolve_device

    if args.batches < 1 or args.batch_size < 1:
        raise ValueError(f"--batches and --batch-size must be >= 1, got {args.batches} and {args.batch_size}")
    torch.manual_seed(args.seed)  # untrained weights (and dropout-free runs) are then the same every time
    import_plugin(args.plugin)  # the user's own choice; a checkpoint never names code to import
    model = build_model(args.model, args.checkpoint)
    name = getattr(model, "model_name", args.model)
    device = resolve_device(args.device)
    model.to(device)
    batch_norm = args.batch_norm or ("running" if args.checkpoint else "batch")
    weights = (f"weights from {args.checkpoint}" if args.checkpoint
               else f"untrained weights (no --checkpoint; initialised with seed {args.seed})")

    data, source = None, None
    if args.dataset:
        from ..data import create_dataset, time_major_loader
        from ..engine.train import check_compatible

        dataset = create_dataset(args.dataset, train=args.split == "train", time_steps=model.time_steps,
                                 root=args.data_root)
        check_compatible(model, dataset, name, args.dataset)
        data = time_major_loader(dataset, batch_size=args.batch_size)  # batches [T, B, C, H, W]
        samples = min(len(dataset), args.batches * args.batch_size)
        source = (f"{samples} samples of {args.dataset} ({args.split} split, first {args.batches} "
                  f"batch(es) of {args.batch_size})")
    report = profile_model(
        model, data, batches=args.batches, data_source=source,
        energy=EnergyModel(e_mac_pj=args.e_mac, e_ac_pj=args.e_ac), nonbinary_as_mac=args.nonbinary_as_mac,
        keep_sample=bool(args.dataset), batch_norm=batch_norm, device=device,
    )
    report.data_source += f"; {weights}"
    print(report.table())
    out = Path(args.out or Path("runs") / "profile" / name)
    written = [report.save_json(out / "profile.json")]
    try:
        written += plot_report(report, out)
    except ImportError as err:  # matplotlib is not a core dependency: the table and JSON stand alone
        print(f"\npictures skipped: {err} (pip install matplotlib)")
    print(f"\nwrote {', '.join(str(p) for p in written)}")
    return 0


def register(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("profile", allow_abbrev=False,
                            help="firing rates, operations, parameters and energy of a model (table, JSON, PNG)")
    parser.add_argument("--model", help="registered model name (see `spikeformers models`)")
    parser.add_argument("--checkpoint", help="weights: a run's .pt, a safetensors file or the authors' checkpoint")
    parser.add_argument("--plugin", help="Python module to import first, one that registers your own model "
                                         "(never taken from the checkpoint)")
    parser.add_argument("--dataset", help="measure on this data set (default: synthetic U[0,1) input, said so)")
    parser.add_argument("--data-root", help="folder holding the data set")
    parser.add_argument("--split", choices=("test", "train"), default="test")
    parser.add_argument("--batches", type=int, default=1, help="batches of the data set to run (default: 1)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", help="folder for profile.json and the PNGs (default: runs/profile/MODEL)")
    parser.add_argument("--e-mac", type=float, default=4.6, help="energy of a multiply-accumulate, pJ (default: 4.6)")
    parser.add_argument("--e-ac", type=float, default=0.9, help="energy of an accumulate, pJ (default: 0.9)")
    parser.add_argument("--nonbinary-as-mac", action="store_true",
                        help="count layers fed by sums of spikes (non-binary residuals) as MACs, not ACs")
    parser.add_argument("--batch-norm", choices=("running", "batch"),
                        help="batch-norm statistics: running (inference; the default with --checkpoint) or "
                             "batch (each batch's own; the default for untrained weights)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the untrained weights (default: 0)")
    parser.add_argument("--device", default="cpu")
    parser.set_defaults(func=run)
    return parser
