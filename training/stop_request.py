"""Ctrl-C and SIGTERM as a request to stop at the next step boundary.

Raising ``KeyboardInterrupt`` from a signal handler can land anywhere: between the optimiser's update
and the step counter, or half-way through ``optimizer.step()``. A checkpoint saved then holds weights
that belong to no step, and a resumed run no longer continues exactly. So the first signal only sets
a flag that the training loop reads between steps (a step takes well under a second to a few
seconds); a second signal quits at once without saving, keeping the last complete checkpoint.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ForcedStop(KeyboardInterrupt):
    """A second stop signal: quit now; the state in memory may be half-way through a step."""


class StopRequest:
    """Context manager: while active (main thread only), SIGINT/SIGTERM set ``requested``."""

    def __init__(self, what: str = "training") -> None:
        self.what = what
        self.requested = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.requested:
            raise ForcedStop(f"signal {signum} again")
        self.requested = True
        print(f"\n{signal.Signals(signum).name}: stopping {self.what} after this step and saving "
              "(send it again to quit at once without saving this step)", file=sys.stderr, flush=True)
