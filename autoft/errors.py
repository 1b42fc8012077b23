"""One user-facing exception type, and the wrapper every command line runs under."""

from __future__ import annotations

import os
import sys
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
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
