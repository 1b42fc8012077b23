"""One user-facing exception type, and the wrapper every command line runs under."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Callable, Optional, Sequence


class AutoftError(Exception):
    """An error the user can fix: bad input, a missing file, a wrong flag.

    The message is complete and shown as is (it names the file, line or flag and says
    what was expected and what was found). Command lines print it and exit non-zero
    without a traceback, unless ``--debug`` is given or ``AUTOFT_DEBUG=1`` is set.
    """


def where(path, line: Optional[int] = None) -> str:
    """``file:line`` prefix for messages about input files (line is 1-based)."""
    return f"{path}:{line}" if line is not None else str(path)


def run_cli(main: Callable[[Optional[Sequence[str]]], Optional[int]], argv: Optional[Sequence[str]] = None) -> int:
    """Run ``main(argv)``; turn AutoftError into a one-line message and exit code 2.

    Ctrl-C exits with 130 and a short note. ``--debug`` (removed from argv here) or
    ``AUTOFT_DEBUG=1`` re-raises so the traceback is shown.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("AUTOFT_DEBUG", "") not in ("", "0")
    if "--debug" in args:
        args.remove("--debug")
        debug = True
    try:
        code = main(args)
    except AutoftError as exc:
        if debug:  # the traceback, but still the user-error exit code
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if exc.name != "paddle":  # a module's own top-level `import paddle` in a Python without Paddle
            raise
        if debug:
            traceback.print_exc()
        from autoft.runtime import paddle_missing

        print(f"error: {paddle_missing()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" to every option's help, except where there is nothing to show:
    a required option, or a None default (the help says what leaving the option unset does)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.required or action.default is None:
            return action.help or ""
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's conventions, for every command line.

    A usage error is one line (``error: <what> (see <prog> --help)``) and exit code 2, not
    argparse's usage block; ``--debug`` (handled by run_cli) is listed in ``--help``; every
    option's help shows its default.
    """

    def __init__(self, *args, debug_flag: bool = True, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)
        if debug_flag:
            self.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                              help="show the full traceback when something fails (also AUTOFT_DEBUG=1)")

    def error(self, message: str):  # noqa: D102 - argparse's hook
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)
