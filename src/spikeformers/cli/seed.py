"""The seed project's command line, unchanged: ``python main.py --dataset dvsc10 --model spikformer ...``.

"Spiking Transformers Reproduced With BrainCog" trained with one timm-style
``main.py``. Its flags are translated here into a :class:`TrainConfig` and
the run goes through ``spikeformers train``. Two things differ on purpose:

- every neuron flag (``--node-type``, ``--threshold``, ``--tau``,
  ``--act-fun``) reaches every neuron of the model; the seed accepted them
  and never passed them on. Flags not given leave the published model's own
  settings (the seed's defaults, such as threshold 0.5, never took effect);
- its model names build the papers' configurations from this library's zoo,
  with ``--step`` as T and ``--event-size`` as the frame size (the frames
  are resized bilinearly, as the seed does, when it is not the sensor's).

A seed flag with no meaning here is an error that names it, never ignored.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

# seed --dataset -> (our data set, sensor or image size)
DATASETS = {"dvsc10": ("cifar10_dvs", 128), "dvsg": ("dvs_gesture", 128), "NCALTECH101": ("ncaltech101", None),
            "nmnist": ("nmnist", 34), "cifar10": ("cifar10", 32), "cifar100": ("cifar100", 32),
            "imnet": ("imagenet", 224)}
# (seed --model, our data set) -> registered model; the seed's names mean the papers' configurations
MODELS = {
    ("spikformer", "cifar10_dvs"): "spikformer_dvs_t10", ("spikformer", "dvs_gesture"): "spikformer_gesture",
    ("spikformer", "cifar10"): "spikformer_cifar10", ("spikformer", "cifar100"): "spikformer_cifar100",
    ("spikformer", "imagenet"): "spikformer_imagenet_8_512",
    ("spikformer_s", "cifar10"): "spikformer_cifar10", ("spikformer_s", "cifar100"): "spikformer_cifar100",
    ("spikformer_TIM", "cifar10_dvs"): "tim_dvs", ("spikformer_tim", "cifar10_dvs"): "tim_dvs",
    ("sdt", "cifar10_dvs"): "spike_driven_dvs_t10", ("sdt", "cifar10"): "spike_driven_cifar10",
    ("sdt", "cifar100"): "spike_driven_cifar100", ("qkformer", "cifar10_dvs"): "qkformer_dvs",
    ("qkformer", "cifar10"): "qkformer_cifar10", ("qkformer", "cifar100"): "qkformer_cifar100",
}
# seed / STEP --node-type -> registered neuron (STEP's names, cls/models/utils/node.py)
NODES = {"LIFNode": "lif", "PLIFNode": "plif", "IFNode": "if", "EIFNode": "eif", "HDLIFNode": "hdlif",
         "ILIFNode": "ilif", "NILIFNode": "nilif", "PSNTorch": "psn", "GLIFTorch": "glif", "KLIFNode": "klif",
         "ComplementaryLIFNeuron": "clif"}
SURROGATES = {"QGateGrad": "qgate", "SigmoidGrad": "sigmoid", "AtanGrad": "atan", "GateGrad": "gate"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="main.py", allow_abbrev=False,
                                description="The seed project's command, run by spikeformers (see spikeformers train).")
    add = p.add_argument
    add("--dataset", default="dvsc10", help=f"one of {', '.join(DATASETS)}")
    add("--model", default="spikformer", help="spikformer, spikformer_s, spikformer_TIM, sdt, qkformer, "
                                              "or any name `spikeformers models` lists")
    add("--data-root", help="folder holding the data set (new: the seed hard-coded its paths)")
    add("--event-size", type=int, help="frame size; event frames are resized bilinearly to it")
    add("--step", type=int, help="time steps T (default: the model's)")
    add("--node-type", help=f"neuron: {', '.join(NODES)}")
    add("--threshold", type=float, help="firing threshold of every neuron but the attention one")
    add("--tau", type=float, help="membrane time constant")
    add("--act-fun", help=f"surrogate gradient: {', '.join(SURROGATES)}")
    add("--device", help="GPU index (the CPU when no GPU is present)")
    add("--output", help="folder under which the run folder is made")
    add("--epochs", type=int)
    add("-b", "--batch-size", type=int)
    add("--lr", type=float)
    add("--min-lr", type=float)
    add("--warmup-lr", type=float)
    add("--warmup-epochs", type=int)
    add("--cooldown-epochs", type=int)
    add("--opt-eps", type=float)
    add("--weight-decay", type=float)
    add("--smoothing", type=float)
    add("--clip-grad", type=float)
    add("--mixup", type=float)
    add("--cutmix", type=float)
    add("--mixup-prob", type=float)
    add("--mixup-switch-prob", type=float)
    add("--mixup-off-epoch", type=int)
    add("--event-mix", action="store_true")
    add("--tet-loss", action="store_true")
    add("--amp", action="store_true")
    add("--model-ema", action="store_true")
    add("--model-ema-decay", type=float)
    add("--sync-bn", action="store_true")
    add("--seed", type=int)
    add("-j", "--workers", type=int)
    add("--resume", help="a run folder to continue")
    return p


def translate(args: argparse.Namespace, cuda_available: bool) -> dict[str, Any]:
    """The ``TrainConfig`` values a seed command means."""
    if args.dataset not in DATASETS:
        raise ValueError(f"Unknown seed --dataset {args.dataset!r}; known: {', '.join(DATASETS)}")
    dataset, native_size = DATASETS[args.dataset]
    model = MODELS.get((args.model, dataset), args.model)
    from ..models import list_models

    if model not in list_models():
        seed_names = sorted({m for m, _ in MODELS})
        raise ValueError(f"--model {args.model} has no configuration for --dataset {args.dataset} here; seed names: "
                         f"{', '.join(seed_names)}; or a registered model (`spikeformers models`)")
    values: dict[str, Any] = {"model": model, "dataset": dataset}
    if args.step is not None:
        values["time_steps"] = args.step
    if args.event_size is not None and args.event_size != native_size:
        values["model_options"] = {"img_size": args.event_size}
        values["dataset_options"] = {"resize": args.event_size, "resize_mode": "bilinear"}
    if args.node_type is not None:
        if args.node_type not in NODES:
            raise ValueError(f"Unknown --node-type {args.node_type!r}; known: {', '.join(NODES)}")
        values["neuron"] = NODES[args.node_type]
    if args.act_fun is not None:
        if args.act_fun not in SURROGATES:
            raise ValueError(f"Unknown --act-fun {args.act_fun!r}; known: {', '.join(SURROGATES)}")
        values["surrogate"] = SURROGATES[args.act_fun]
    if args.device is not None:
        values["device"] = f"cuda:{args.device}" if cuda_available else "cpu"
    if args.output is not None:
        values["runs_dir"] = args.output
    renamed = {"threshold": "v_threshold", "smoothing": "label_smoothing", "model_ema_decay": "ema_decay",
               "data_root": "data_root"}
    for flag in ("tau", "threshold", "epochs", "batch_size", "lr", "min_lr", "warmup_lr", "warmup_epochs",
                 "cooldown_epochs", "opt_eps", "weight_decay", "smoothing", "clip_grad", "mixup", "cutmix", "mixup_prob",
                 "mixup_switch_prob", "mixup_off_epoch", "model_ema_decay", "seed", "workers", "data_root"):
        if getattr(args, flag) is not None:
            values[renamed.get(flag, flag)] = getattr(args, flag)
    for flag, key in (("tet_loss", "tet"), ("amp", "amp"), ("model_ema", "ema"), ("sync_bn", "sync_bn")):
        if getattr(args, flag):
            values[key] = True
    if args.event_mix:
        values["event_mix"] = 1.0
    return values


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    from ..engine.config import load_config, matching_recipe
    from ..engine.stopping import TrainingInterrupted
    from ..engine.train import train

    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        flags = [u for u in unknown if u.startswith("-")] or unknown
        parser.error(f"{', '.join(flags)}: not supported by spikeformers' main.py (run `python main.py -h` for the "
                     f"flags it maps, or use `spikeformers train`)")
    try:
        if args.resume:
            cfg = load_config(Path(args.resume) / "config.yaml", out=args.resume)
        else:
            values = translate(args, torch.cuda.is_available())
            if args.device is not None and not torch.cuda.is_available():
                print(f"--device {args.device}: no GPU here, training on the CPU", file=sys.stderr)
            recipe = matching_recipe(values["model"], values["dataset"])
            cfg = load_config(recipe, **values)
        train(cfg, resume=bool(args.resume))
    except TrainingInterrupted as stop:
        print(stop, file=sys.stderr)
        return 128 + stop.signum
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as err:
        print(f"main.py: error: {err}", file=sys.stderr)
        return 2
    return 0
