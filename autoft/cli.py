"""The ``autoft`` command: one dispatcher over sub-commands that live beside their code.

Each sub-command module exposes ``cli(argv) -> int`` and parses its own flags, so this
file never imports Paddle and stays the same as areas grow.
"""

from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

from autoft.errors import AutoftError, run_cli

SUBCOMMANDS = {
    # name: (module, one-line help)
    "convert": ("autoft.convert", "convert HF / PaddleNLP / PaddleHub 1.x weights to autoft's format"),
    "data": ("autoft.data.cli", "build the demo set (data demo), validate a dataset (data check)"),
    "autofinetune": ("autoft.tuner.cli", "the AutoDL Finetuner (same as the `autofinetune` command)"),
    "doctor": ("autoft.doctor", "self-check of this box: Paddle, GPUs, attention kernels, a train step per task"),
}


def usage() -> str:
    lines = ["usage: autoft <command> [options]   (autoft <command> -h for its options)", "", "commands:"]
    lines += [f"  {name:<13} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "global option: --debug shows tracebacks"]
    return "\n".join(lines)


def dispatch(argv: Sequence[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from autoft import __version__

        print(f"autoft {__version__}")
        return 0
    name = argv[0]
    if name not in SUBCOMMANDS:
        raise AutoftError(f"unknown command {name!r}; expected one of: {', '.join(SUBCOMMANDS)}")
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return module.cli(list(argv[1:]))


def main(argv: Optional[Sequence[str]] = None) -> int:
    sys.exit(run_cli(dispatch, argv))


if __name__ == "__main__":
    main()
