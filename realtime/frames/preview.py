"""The newest output frame for a front-end's preview (the app's window, a screenshot, a test): never a queue.

A front-end that paints slower than the live loop simply skips frames; the loop never waits for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from realtime.pipeline import FrameInfo


@dataclass(frozen=True)
class PreviewFrame:
    """One output frame for a preview: image (H, W, 3) BGR uint8 as the sinks got it (marked), source (the
    captured input), info (the pipeline's FrameInfo), target (path shown), version (the live session's
    commands applied when it was rendered)."""

    seq: int
    image: np.ndarray
    source: np.ndarray | None
    info: FrameInfo
    target: str
    version: int


class PreviewSlot:
    """A slot of one frame.

    ``put`` (the output thread) replaces the frame and calls the listeners, which must be quick (the app's
    posts one repaint request at a time); ``latest()`` reads it; ``wait_for(predicate, timeout)`` waits for a
    frame that satisfies ``predicate`` (tests and the screenshot wait on conditions, never on sleeps). It is a
    sink too (``write`` / ``close``), for a pipeline without a session (``swapcam bench --compare preview=...``).
    """

    def __init__(self) -> None:
        self._frame: PreviewFrame | None = None
        self._cond = threading.Condition()
        self._listeners: list[Callable[[], None]] = []

    def add_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def put(self, frame: PreviewFrame) -> None:
        with self._cond:
            self._frame = frame
            self._cond.notify_all()
        for listener in list(self._listeners):
            listener()

    def latest(self) -> PreviewFrame | None:
        return self._frame

    def write(self, frame: np.ndarray, info: FrameInfo) -> None:
        self.put(PreviewFrame(info.seq, frame, info.source_image, info, "", 0))

    def close(self) -> None:
        pass

    def wait_for(self, predicate: Callable[[PreviewFrame], bool], timeout: float) -> PreviewFrame | None:
        """The first newest frame that satisfies ``predicate`` within ``timeout`` s, else None."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                frame = self._frame
                if frame is not None and predicate(frame):
                    return frame
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
