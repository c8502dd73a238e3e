"""Camera-like pacing for file and synthetic sources."""

from __future__ import annotations

import time


class Pacer:
    """Releases frame i at start + i / fps (like a camera's clock); no wait when ``fps`` is None."""

    def __init__(self, fps: float | None) -> None:
        self.period = 1.0 / fps if fps else 0.0
        self.start: float | None = None
        self.count = 0
        self.last_wait_s = 0.0

    def wait(self) -> None:
        if not self.period:
            return
        now = time.perf_counter()
        if self.start is None:
            self.start = now
        due = self.start + self.count * self.period
        self.last_wait_s = 0.0
        if due > now:
            time.sleep(due - now)
            self.last_wait_s = time.perf_counter() - now
        elif now - due > 1.0:  # far behind (debugger, suspended machine): restart the clock
            self.start, self.count = now, 0
        self.count += 1
