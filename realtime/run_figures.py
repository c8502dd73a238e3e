"""Figures of a live run in bounded memory: a run of hours keeps no per-frame arrays.

``StreamingSeries`` gives the count, exact mean and percentiles (within 1 % of the value) of a
stream of values, in memory that does not grow with the run: a DDSketch (Masson, Rim, Lee 2019,
DataDog's ``ddsketch`` package) with at most ``MAX_BINS`` bins. ``RunFigures`` keeps one series
per stage plus the capture->output latency, the first and last output times (for fps) and the
faces drawn. ``RollingWindow`` holds the last few frames for the HUD's fps and latency.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from ddsketch import LogCollapsingLowestDenseDDSketch

RELATIVE_ACCURACY = 0.01  # a percentile is within 1 % of the true value
MAX_BINS = 2048  # enough for 1 us .. 1 day at 1 % without collapsing; bounds memory (~50 KB a series)


@dataclass(frozen=True)
class SeriesFigures:
    """count, mean and percentiles of one series (ms for times); NaN where there are no values."""

    count: int
    mean: float
    p50: float
    p95: float
    p99: float


class StreamingSeries:
    """Count, mean and p50/p95/p99 of a stream of non-negative values in bounded memory."""

    def __init__(self) -> None:
        self._sketch = LogCollapsingLowestDenseDDSketch(RELATIVE_ACCURACY, bin_limit=MAX_BINS)

    def add(self, value: float, weight: int = 1) -> None:
        """Add ``value`` (negative values count as 0), ``weight`` times."""
        self._sketch.add(max(float(value), 0.0), weight)

    @property
    def count(self) -> int:
        return int(self._sketch.count)

    def quantile(self, q: float) -> float:
        """Value at quantile ``q`` in [0, 1]; NaN when empty."""
        if not self.count:
            return math.nan
        return float(self._sketch.get_quantile_value(q))

    def figures(self) -> SeriesFigures:
        if not self.count:
            return SeriesFigures(0, math.nan, math.nan, math.nan, math.nan)
        return SeriesFigures(self.count, float(self._sketch.avg), self.quantile(0.50), self.quantile(0.95),
                             self.quantile(0.99))


class RunFigures:
    """What a run's summary needs, updated once per output frame, in memory independent of its length.

    ``add(t_out, latency_ms, timings, faces)``: t_out in perf_counter seconds, timings stage -> ms.
    """

    def __init__(self, stages: tuple[str, ...]) -> None:
        self.stage_names: list[str] = list(stages)
        self.stages: dict[str, StreamingSeries] = {s: StreamingSeries() for s in stages}
        self.latency = StreamingSeries()
        self.frames = 0
        self.frames_with_faces = 0
        self.t_first = self.t_last = math.nan

    def add(self, t_out: float, latency_ms: float, timings: dict[str, float], faces: int) -> None:
        if not self.frames:
            self.t_first = t_out
        self.t_last = t_out
        self.frames += 1
        self.frames_with_faces += faces > 0
        self.latency.add(latency_ms)
        for name in timings:
            if name not in self.stages:  # a processor's own extra stage: 0 ms in the frames before it
                self.stages[name] = StreamingSeries()
                self.stage_names.append(name)
                if self.frames > 1:
                    self.stages[name].add(0.0, self.frames - 1)
        for name, series in self.stages.items():
            series.add(timings.get(name, 0.0))  # missing stages count as 0 ms, as in the per-frame arrays

    @property
    def fps(self) -> float:
        """Sustained output rate: frames out over the time from first to last output."""
        span = self.t_last - self.t_first
        return (self.frames - 1) / span if self.frames >= 2 and span > 0 else 0.0


class RollingWindow:
    """The last ``size`` frames' output times and latencies, for the HUD (fps, latency p50/p95)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("the HUD window needs at least one frame")
        self._t_out: deque[float] = deque(maxlen=size)
        self._latency_ms: deque[float] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._t_out)

    def add(self, t_out: float, latency_ms: float) -> None:
        self._t_out.append(t_out)
        self._latency_ms.append(latency_ms)

    def fps_at(self, now: float) -> float:
        """Frames per second over the window, ending at ``now``."""
        span = now - self._t_out[0] if self._t_out else 0.0
        return len(self._t_out) / span if span > 0 else 0.0

    def latency_percentiles(self, *qs: float) -> tuple[float, ...]:
        """Latency percentiles (q in 0..100, linear interpolation as numpy's default) over the window."""
        values = sorted(self._latency_ms)
        if not values:
            return tuple(math.nan for _ in qs)
        out = []
        for q in qs:
            pos = q / 100 * (len(values) - 1)
            lo = int(pos)
            hi = min(lo + 1, len(values) - 1)
            out.append(values[lo] + (values[hi] - values[lo]) * (pos - lo))
        return tuple(out)
