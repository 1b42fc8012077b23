"""The ``autoft`` command: one dispatcher over sub-commands that live beside their code.

Each sub-command module exposes ``cli(argv) -> int`` and parses its own flags, so this
file never imports Paddle and stays the same as areas grow (a new command: one SUBCOMMANDS entry).
``--debug`` anywhere on the line is taken out by run_cli and shows tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Optional, Sequence

from autoft import __version__
from autoft.errors import ArgumentParser, DefaultsHelpFormatter, run_cli

SUBCOMMANDS = {
    # name: (module, one-line help)
    "convert": ("autoft.convert", "convert HF / PaddleNLP / PaddleHub 1.x weights to autoft's format"),
    "data": ("autoft.data.cli", "build the demo set (data demo), validate a dataset (data check)"),
    "autofinetune": ("autoft.tuner.cli", "the AutoDL Finetuner (same as the `autofinetune` command)"),
    "doctor": ("autoft.doctor", "self-check of this box: Paddle, GPUs, attention kernels, a train step per task"),
}


def build_parser() -> ArgumentParser:
    """``autoft --help``: the commands; each command parses its own flags."""
    commands = "\n".join(f"  {name:<13} {help_}" for name, (_, help_) in SUBCOMMANDS.items())
    p = ArgumentParser(prog="autoft", usage="autoft [--debug] <command> [options]",
                       description="autoft: ChineseGLUE-AutoFinetune on PaddlePaddle (autoft <command> --help "
                       "for a command's options)", epilog=f"commands:\n{commands}", formatter_class=_Formatter)
    p.add_argument("command", nargs="?", choices=list(SUBCOMMANDS), metavar="<command>",
                   help="one of the commands below (unset: print this help)")
    p.add_argument("-V", "--version", action="version", version=f"autoft {__version__}",
                   help="print the version and exit")
    return p


class _Formatter(argparse.RawDescriptionHelpFormatter, DefaultsHelpFormatter):
    """The commands list keeps its lines; options show their defaults."""


def usage() -> str:
    return build_parser().format_help()


def dispatch(argv: Sequence[str]) -> int:
    if argv and argv[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
        return module.cli(list(argv[1:]))
    build_parser().parse_args(list(argv))  # --help, --version, or a one-line error (exit 2)
    print(usage(), end="")  # no command
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in args:  # run_cli takes it out here; the command's own run_cli must see it too
        os.environ["AUTOFT_DEBUG"] = "1"
    sys.exit(run_cli(dispatch, args))


if __name__ == "__main__":
    main()
