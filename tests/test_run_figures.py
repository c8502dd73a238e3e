"""Live figures in bounded memory: streaming percentiles close to the exact ones, storage that does not
grow with the run, and a pipeline that keeps per-frame arrays only when asked."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from realtime.frames.demo_source import DemoSource
from realtime.pipeline import STAGES, PassThrough, Pipeline
from realtime.run_figures import RELATIVE_ACCURACY, RollingWindow, RunFigures, StreamingSeries
from realtime.frames.sinks import NullSink


def _latencies(n: int, seed: int) -> np.ndarray:
    """Frame latencies like a live run's (ms): log-normal around 25 ms with a long tail, clipped to 0.1 ms..10 s."""
    return np.clip(np.random.default_rng(seed).lognormal(np.log(25), 0.6, n), 0.1, 10_000)


def test_streaming_percentiles_are_within_one_percent_and_the_mean_is_exact():
    values = _latencies(50_000, seed=1)
    series = StreamingSeries()
    for v in values:
        series.add(v)
    f = series.figures()
    assert f.count == len(values) and f.mean == pytest.approx(values.mean(), rel=1e-9)
    for got, q in ((f.p50, 50), (f.p95, 95), (f.p99, 99)):
        exact = np.percentile(values, q)
        assert abs(got - exact) <= 2 * RELATIVE_ACCURACY * exact, (q, got, exact)


def test_empty_series_gives_nan():
    f = StreamingSeries().figures()
    assert f.count == 0 and math.isnan(f.p95) and math.isnan(f.mean)


def test_run_figures_storage_does_not_grow_with_the_run():
    """The same figures for 10x the frames take (almost) no more memory: the per-frame lists that grew
    ~650 bytes a frame (issue 13) would add ~120 MB here."""
    figures = RunFigures(STAGES)
    values = _latencies(200_000, seed=2).tolist()

    def feed(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            v = values[i]
            figures.add(i / 30, v, {"capture": v / 10, "landmarks": v / 3, "swap": v / 3, "merge": v / 8}, 1)

    feed(0, 20_000)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        feed(20_000, 200_000)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert figures.frames == 200_000
    assert grown < 64 * 1024, f"grew {grown} bytes over 180000 frames"


def test_rolling_window_keeps_only_the_last_frames():
    window = RollingWindow(60)
    for i in range(1000):
        window.add(i / 30, float(i))
    assert len(window) == 60
    p50, p95 = window.latency_percentiles(50, 95)
    assert p50 == pytest.approx(np.percentile(np.arange(940, 1000), 50))
    assert p95 == pytest.approx(np.percentile(np.arange(940, 1000), 95))
    assert window.fps_at(1000 / 30) == pytest.approx(60 / (60 / 30))


class _LastInfo(NullSink):
    def write(self, frame, info=None):
        super().write(frame, info)
        self.info = info


@pytest.mark.parametrize("record", [False, True])
def test_pipeline_keeps_per_frame_arrays_only_when_asked(record):
    sink = _LastInfo()
    pipe = Pipeline(DemoSource(seconds=30, realtime=False), PassThrough(), [sink], record_frames=record)
    stats = pipe.run(max_frames=300)
    assert stats.frames_out == 300 and stats.latency.count == 300 and stats.stages["output"].count == 300
    assert stats.fps > 0 and stats.latency.p95 >= stats.latency.p50 > 0
    assert sink.info.fps > 0 and sink.info.latency_p95_ms > 0  # the HUD's rolling figures
    assert len(stats.latency_ms) == len(stats.seq) == (300 if record else 0)
    if record:
        assert list(stats.seq) == list(range(300))
        assert stats.latency.p50 == pytest.approx(np.percentile(stats.latency_ms, 50), rel=2 * RELATIVE_ACCURACY)
