"""Process groups of trials: the one place that signals them (local pool and Ray workers alike).

Every trial runs in its own process group (``start_new_session=True``: the trial's pid is the
group id), so a trial and everything it spawned can be ended together. ``end_group`` is the
shutdown sequence: SIGTERM to the group, a grace period, SIGKILL to whatever is left.
``interrupts_deferred`` keeps a second Ctrl-C from cutting that sequence short.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Iterator, Sequence

# How long a trial's group gets between SIGTERM and SIGKILL.
TERM_GRACE_SECONDS = 5.0


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to process group ``pgid``; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # a recycled id now owned by someone else: not ours
        return False


def group_alive(pgid: int) -> bool:
    """Whether any process (zombies included, until reaped) is still in group ``pgid``."""
    return signal_group(pgid, 0)


def end_groups(pgids: Sequence[int], grace: float = TERM_GRACE_SECONDS) -> None:
    """SIGTERM every group, wait up to ``grace`` seconds for them to empty, SIGKILL what is left.

    Used after a trial's main process exited (its children must not outlive it), for a stopped
    trial and at shutdown. Returns when every group is gone or has been sent SIGKILL.
    """
    live = [g for g in pgids if signal_group(g, signal.SIGTERM)]
    deadline = time.monotonic() + grace
    while live and time.monotonic() < deadline:
        time.sleep(0.02)
        live = [g for g in live if group_alive(g)]
    for g in live:
        signal_group(g, signal.SIGKILL)


def end_group(pgid: int, grace: float = TERM_GRACE_SECONDS) -> None:
    """``end_groups`` for one group."""
    end_groups([pgid], grace)


@contextlib.contextmanager
def interrupts_deferred(message: str = "stopping the running trials; please wait") -> Iterator[None]:
    """Within the block, Ctrl-C and SIGTERM print ``message`` instead of raising, so a shutdown
    that is killing trials cannot be cut short before its SIGKILL step. Main thread only
    (elsewhere signals cannot be handled and the block just runs)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum, frame):  # noqa: ARG001 - signal handler signature
        print(f"\n{message}", file=sys.stderr, flush=True)

    previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
