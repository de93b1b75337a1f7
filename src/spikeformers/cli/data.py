"""``spikeformers data prepare | show | options``: build a data set's frame cache; look at a sample;
list a data set's options.

    spikeformers data prepare --dataset cifar10_dvs --root DIR --time-steps 16 --split-by number
    spikeformers data show --dataset dvs_gesture --root DIR --index 3 --train --out gesture.png
    spikeformers data show --dataset dvs_digits --index 0 --out digit.gif
    spikeformers data options --dataset cifar10_dvs

``--dataset-option KEY=VALUE`` (repeatable; ``--option`` for short, as
``spikeformers train --dataset-option``) passes any other option of the data
set (``spikeformers data options --dataset NAME`` lists them, with their
defaults and what each does, as the data set's class declares them), the value read
as YAML: ``--option resize=[64,64] --option resize_mode=avg --option split=braincog``.
"""

from __future__ import annotations

import argparse
import os
import sys

# spikeformers.data.SPLIT_MODES, written out: importing the data package here would import torch
# for every command line (tests/test_cli_data.py checks that the two agree).
SPLIT_MODES = ("number", "time", "time_bins")


def parse_options(pairs) -> dict:
    """``['key=value', ...]`` -> ``{key: YAML value}`` (read as recipes are, ``load_yaml``); a pair
    without '=' or with a bad value is a ValueError naming it."""
    from ..engine.config import load_yaml

    options = {}
    for pair in pairs or []:
        key, separator, value = pair.partition("=")
        if not separator or not key.strip():
            raise ValueError(f"--dataset-option needs KEY=VALUE; got {pair!r}")
        key = key.strip().replace("-", "_")
        options[key] = load_yaml(value, f"--dataset-option {key}") if value.strip() else None
    return options


def dataset_from_args(args: argparse.Namespace, train: bool):
    from ..data.registry import create_dataset, dataset_options

    options = parse_options(args.option)
    if args.split_by is not None:
        options["split_by"] = args.split_by
    if getattr(args, "workers", None) is not None:
        # --workers sizes the frame-cache build: a data set with no cache (the built-in digits, static
        # images) has nothing for them to do, which is no reason to fail.
        if "workers" in dataset_options(args.dataset):
            options["workers"] = args.workers
        elif train:
            print(f"spikeformers data: --workers does not apply to {args.dataset} (it builds no frame cache)",
                  file=sys.stderr)
    return create_dataset(args.dataset, train=train, time_steps=args.time_steps, root=args.root, **options)


def prepare(args: argparse.Namespace) -> int:
    for train in (True, False):
        dataset = dataset_from_args(args, train)  # building it fills the frame cache, with a progress bar
        print(dataset.describe() if hasattr(dataset, "describe") else f"{len(dataset)} samples")
        if getattr(dataset, "cache", None) is None and dataset.in_channels == 3:
            print(f"  {args.dataset} is a static-image data set: nothing to cache, its files are read as they are")
    return 0


def show(args: argparse.Namespace) -> int:
    from ..data.static.encoding import denormalize
    from ..data.visualize import (default_scale, figure_pixels, frames_to_rgb, image_to_rgb, save_gif,
                                  save_png)

    extension = os.path.splitext(args.out)[1].lower()
    if extension not in (".png", ".gif"):
        raise ValueError(f"--out must end in .png or .gif; got {args.out!r}")
    dataset = dataset_from_args(args, args.train)
    if not -len(dataset) <= args.index < len(dataset):
        raise ValueError(f"--index {args.index} is outside the {len(dataset)} samples of {args.dataset} "
                         f"{'train' if args.train else 'test'}")
    frames, label = dataset[args.index]
    classes = getattr(dataset, "classes", None)
    name = f"{classes[label]} (label {label})" if classes else f"label {label}"
    part = "train" if args.train else "test"
    title = f"{args.dataset} {part} #{args.index}: {name}"
    if dataset.in_channels == 3:  # a static image repeated over T: show it once
        rgb = image_to_rgb(denormalize(frames[0], dataset.mean, dataset.std))
        labels = None
    else:
        rgb = frames_to_rgb(frames)
        labels = [f"t={t}" for t in range(len(rgb))]
        title += "  (ON orange, OFF blue)"
    if extension == ".png":
        save_png(rgb, args.out, title, dpi=args.dpi, panel_titles=labels)
        width, height = figure_pixels(len(rgb), args.dpi)
        print(f"wrote {args.out} ({width}x{height} px, {len(rgb)} panels): {title}")
    else:
        scale = args.scale or default_scale(*rgb.shape[1:3])
        save_gif(rgb, args.out, scale, frame_ms=args.frame_ms, labels=labels)
        print(f"wrote {args.out} ({rgb.shape[2] * scale}x{rgb.shape[1] * scale} px, {len(rgb)} frames): {title}")
    return 0


def options(args: argparse.Namespace) -> int:
    from ..data.registry import dataset_option_help, dataset_options

    defaults, descriptions = dataset_options(args.dataset), dataset_option_help(args.dataset)
    if not defaults:
        print(f"{args.dataset} has no options")
    settings = {key: f"{key} = {default!r}" for key, default in defaults.items()}
    width = max(map(len, settings.values()), default=0)
    for key, setting in settings.items():
        print(f"{setting:<{width}}  {descriptions[key]}".rstrip())
    return 0


def run(args: argparse.Namespace) -> int:
    from ..atomic import DiskFullError

    try:
        return {"prepare": prepare, "show": show, "options": options}[args.data_command](args)
    except ImportError as error:  # an optional package (Pillow, matplotlib): say which, no traceback
        raise ValueError(str(error)) from None
    except DiskFullError as error:  # the frame cache's disk: the message names the file
        print(f"spikeformers data: error: {error}", file=sys.stderr)
        return 1


def _dataset_flags(parser: argparse.ArgumentParser, time_steps: int) -> None:
    parser.add_argument("--dataset", required=True, help="data set name (see the registry: dvs_digits, cifar10_dvs, ...)")
    parser.add_argument("--root", "--data-root", dest="root", help="folder holding the data set")
    parser.add_argument("--time-steps", "--T", dest="time_steps", type=int, default=time_steps,
                        help=f"frames per sample (default: {time_steps})")
    parser.add_argument("--split-by", choices=SPLIT_MODES,
                        help="how events are cut into frames (default: the data set's, 'number')")
    parser.add_argument("--dataset-option", "--option", dest="option", action="append", metavar="KEY=VALUE",
                        help="another data set option, value in YAML (repeatable), e.g. resize=[64,64]; "
                             "the same as train's --dataset-option")


def register(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("data", allow_abbrev=False, help="build a data set's frame cache, or look at a sample")
    actions = parser.add_subparsers(dest="data_command", required=True)

    build = actions.add_parser("prepare", allow_abbrev=False, help="build the frame cache of both splits")
    _dataset_flags(build, time_steps=16)
    build.add_argument("--workers", type=int, help="processes building the cache (default: up to 8)")

    look = actions.add_parser("show", allow_abbrev=False,
                              help="render a sample: one panel per time step (.png) or an animated .gif")
    _dataset_flags(look, time_steps=16)
    look.add_argument("--index", type=int, required=True, help="the sample's index in its split")
    part = look.add_mutually_exclusive_group()
    part.add_argument("--train", dest="train", action="store_true", help="from the training split")
    part.add_argument("--test", dest="train", action="store_false", help="from the test split (default)")
    look.set_defaults(train=False)
    look.add_argument("--out", required=True, help="FILE.png (panels) or FILE.gif (animation)")
    look.add_argument("--dpi", type=int, default=100, help="PNG resolution (default: 100, 200 px a panel)")
    look.add_argument("--scale", type=int, help="GIF: pixels per sensor pixel (default: about 256 px across)")
    look.add_argument("--frame-ms", type=int, default=200, help="GIF: milliseconds per frame (default: 200)")

    listing = actions.add_parser("options", allow_abbrev=False, help="list a data set's options and defaults")
    listing.add_argument("--dataset", required=True)
    parser.set_defaults(func=run)
    return parser

