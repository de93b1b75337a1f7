"""The command line: ``spikeformers train | eval | models | neurons | convert | profile | data | export | predict``.

Each subcommand is one module here with ``register(subparsers)`` (adds its
parser, sets ``func``) and ``run(args)``; :data:`COMMANDS` lists them in the
order ``--help`` shows them. A command line argparse cannot read gets one
line naming the problem (with the closest flag for a typo) and where the
help is, not the whole usage.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from typing import NoReturn, Sequence

from .. import __version__
from .train import add_train_flags  # noqa: F401  (re-exported for tests and plugins)

COMMANDS = ("train", "evaluate", "models", "neurons", "convert", "profile", "data", "export", "predict")


class Parser(argparse.ArgumentParser):
    """argparse, but an error is its message and where the help is: the usage it would print first runs
    to dozens of lines and hides the message."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\nsee `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="spikeformers", allow_abbrev=False,
                    description="Spiking transformers: train, evaluate, profile, list, convert; prepare and look at data; "
                                "export and predict.")
    parser.add_argument("--version", action="version", version=f"spikeformers {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)  # subcommands' parsers are Parsers too
    parser.subcommands = {}
    for module in COMMANDS:
        command = importlib.import_module(f".{module}", __name__).register(sub)
        parser.subcommands[command.prog.split()[-1]] = command
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse alone would not say which flag was meant
        sub = innermost(parser, args)
        flags = [o for a in sub._actions for o in a.option_strings]
        bad = next((u for u in unknown if u.startswith("-")), unknown[0])
        close = difflib.get_close_matches(bad.split("=")[0], flags, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        sub.error(f"unrecognized argument {bad!r}.{hint}")
    from ..engine.stopping import NonFiniteTrainingError, PeerLostError

    try:
        return args.func(args)
    except (NonFiniteTrainingError, PeerLostError) as err:
        print(f"spikeformers {args.command}: stopped: {err}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as err:
        print(f"spikeformers {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the machine's, not the input's: a full disk, a folder it may not write
        print(f"spikeformers {args.command}: error: {err}", file=sys.stderr)
        return 1
    except ImportError as err:  # an optional extra the command needs
        print(f"spikeformers {args.command}: error: {err} (install the extra it belongs to)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def innermost(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)command's parser that read ``args`` (``data prepare``'s, not ``data``'s): its flags are the
    ones a typo meant."""
    while True:
        chooser = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if chooser is None or getattr(args, chooser.dest, None) is None:
            return parser
        parser = chooser.choices[getattr(args, chooser.dest)]
