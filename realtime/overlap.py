"""When the landmarks of the next frame should overlap the swap of this one (two threads), decided as it runs.

On a machine with few cores the two threads slow each other down: when one thread keeps up with the camera,
overlapping only adds latency (about 1.5x measured at 720p30 on 2 cores). When one thread cannot keep up
(1080p60 on 2 cores: landmarks + occlusion + swap + merge + mark take longer than the 16.7 ms between frames),
the overlap buys frames: the frames one thread would drop are processed. ``OverlapGovernor`` watches both
figures, the camera's interval between frames and one frame's work (landmarks + render, ms), and says which.

It is a plain object fed by the pipeline's threads (``captured`` from the capture thread, ``processed`` from
the render thread, ``overlap`` read by the landmark thread); a lock keeps its figures whole. It holds no clock
of its own: every figure comes from its callers, so its decisions can be tested with given numbers.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

WINDOW_FRAMES = 30  # frames per decision (half a second at 60 fps)
ON_RATIO = 1.0  # overlap when one frame's work exceeds this share of the camera's frame interval
OFF_RATIO = 0.7  # back to one thread when it falls below this share (overlapped work is inflated by the
# two threads sharing the cores: about 1.2x measured at 1080p60 on 2 cores, so the gap avoids flapping)


class OverlapGovernor:
    """Decides from measured figures whether the pipeline's two processing threads overlap.

    ``captured(t)``: a frame was captured at ``t`` (s, any monotonic clock). ``processed(work_ms)``: one frame's
    landmarks + render took ``work_ms`` (ms, wall). Every ``window`` processed frames it compares the median
    work with the median capture interval over the last ``window`` of each and turns the overlap on above
    ``on_ratio``, off below ``off_ratio``. ``switches`` counts the changes; ``overlapped`` the frames that
    were processed while it was on.
    """

    def __init__(self, *, window: int = WINDOW_FRAMES, on_ratio: float = ON_RATIO, off_ratio: float = OFF_RATIO,
                 overlap: bool = False) -> None:
        if window < 2 or not 0 < off_ratio <= on_ratio:
            raise ValueError("need window >= 2 and 0 < off_ratio <= on_ratio")
        self.window, self.on_ratio, self.off_ratio = window, on_ratio, off_ratio
        self._overlap = overlap
        self._intervals: deque[float] = deque(maxlen=window)
        self._work: deque[float] = deque(maxlen=window)
        self._last_capture: float | None = None
        self._since_decision = 0
        self._lock = threading.Lock()
        self.switches = 0
        self.overlapped = 0
        self.processed_frames = 0

    @property
    def overlap(self) -> bool:
        """True: take the next frame's landmarks while this one renders; False: one frame at a time."""
        return self._overlap

    def captured(self, t: float) -> None:
        """The capture thread delivered a frame captured at ``t`` seconds."""
        with self._lock:
            if self._last_capture is not None and t > self._last_capture:
                self._intervals.append((t - self._last_capture) * 1000.0)
            self._last_capture = t

    def forget_capture(self) -> None:
        """A new run begins: the gap since the last run's final frame is not a camera interval."""
        with self._lock:
            self._last_capture = None

    def processed(self, work_ms: float) -> None:
        """One frame's landmarks + render took ``work_ms``; decide when a window is full."""
        with self._lock:
            self.processed_frames += 1
            self.overlapped += int(self._overlap)
            self._work.append(float(work_ms))
            self._since_decision += 1
            if self._since_decision < self.window or len(self._work) < self.window or len(self._intervals) < 2:
                return
            self._since_decision = 0
            ratio = float(np.median(self._work)) / max(float(np.median(self._intervals)), 1e-3)
            want = ratio > self.on_ratio if not self._overlap else ratio >= self.off_ratio
            if want != self._overlap:
                self._overlap = want
                self.switches += 1

    def figures(self) -> dict:
        """JSON-friendly: the state, the medians it decides on (ms), switches and overlapped frames."""
        with self._lock:
            return {"overlap": self._overlap, "switches": self.switches, "overlapped": self.overlapped,
                    "processed": self.processed_frames,
                    "work_ms_p50": float(np.median(self._work)) if self._work else None,
                    "interval_ms_p50": float(np.median(self._intervals)) if self._intervals else None}
