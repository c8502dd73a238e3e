"""`swapcam bench SOURCE --model M --soak MINUTES`: the live loop run for a long time, memory and latency sampled.

The pipeline is set up as `run_live.py --source SOURCE --loop --sink null` sets it up: the source paced
like a camera and looped, the real processor (landmarks, smoothing, swap, merge), no per-frame arrays.
A probe sink notes each frame's capture->sink latency; every ``sample_s`` seconds it records the
process's resident memory, that interval's latency p50/p95 and fps, and the load average. Then:

- memory growth after warm-up: median resident memory in the last window minus that in the first
  window after warm-up (MB), and the least-squares slope over all post-warm-up samples (MB/hour);
- p95 drift: median of the interval p95s in the last window over that in the first window, minus 1.

Medians over windows (5 minutes in a 30-minute soak) keep single noisy intervals (other jobs on the
machine) from deciding the result. The probe keeps one small record per interval (a 30-minute soak:
180 records), so the measurement does not itself grow the memory it measures.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

GOAL_GROWTH_MB = 2.0
GOAL_P95_DRIFT = 0.10


class SoakError(RuntimeError):
    """A soak that cannot run as asked."""


@dataclass(frozen=True)
class SoakOptions:
    """How long, how often, and which parts count as warm-up and as the compared windows."""

    minutes: float
    sample_s: float = 10.0
    warmup_minutes: float | None = None  # default: 2 minutes, at most a fifth of the soak
    window_minutes: float | None = None  # default: 5 minutes, at most a quarter of the post-warm-up time
    progress: bool = True

    def warmup_s(self) -> float:
        return 60.0 * (self.warmup_minutes if self.warmup_minutes is not None else min(2.0, self.minutes / 5))

    def window_s(self) -> float:
        if self.window_minutes is not None:
            return 60.0 * self.window_minutes
        return min(300.0, (60.0 * self.minutes - self.warmup_s()) / 4)

    def check(self) -> SoakOptions:
        if self.minutes <= 0 or self.sample_s <= 0:
            raise SoakError("--soak MINUTES and the sample interval must be positive")
        post = 60.0 * self.minutes - self.warmup_s()
        if post < 2 * self.window_s() or self.window_s() < 2 * self.sample_s:
            raise SoakError(f"a {self.minutes:g}-minute soak leaves {post:.0f} s after warm-up: too short for two "
                            f"windows of {self.window_s():.0f} s sampled every {self.sample_s:g} s")
        return self


def resident_mb() -> float:
    """Current resident memory of this process in MiB (Linux /proc; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm", encoding="utf-8") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class SoakProbe:
    """A sink that samples the run every ``sample_s`` seconds and stops the pipeline after ``duration_s``.

    ``samples``: one dict per interval: t_s (since the first frame), rss_mb, frames, fps,
    latency_p50_ms, latency_p95_ms (of that interval), load_1min.
    """

    duration_s: float
    sample_s: float
    stop: object = None  # callable: the pipeline's stop()
    on_sample: object = None  # callable(sample) for progress
    samples: list = field(default_factory=list)
    capacity: int = 16384  # latencies one interval can hold (beyond it the interval is sampled early)

    def __post_init__(self) -> None:
        self._latency = np.empty(self.capacity, np.float64)  # allocated once, reused every interval
        self._n = 0
        self._t0 = self._t_interval = None
        self.frames = 0

    def write(self, frame: np.ndarray, info=None) -> None:
        now = time.perf_counter()
        if self._t0 is None:
            self._t0 = self._t_interval = now
        if info is not None:
            self._latency[self._n] = (now - info.t_capture) * 1000
            self._n += 1
        self.frames += 1
        if now - self._t_interval >= self.sample_s or self._n == self.capacity:
            self._sample(now)
            if now - self._t0 >= self.duration_s and self.stop is not None:
                self.stop()

    def _sample(self, now: float) -> None:
        lat = self._latency[: self._n]
        p50, p95 = (float(v) for v in np.percentile(lat, [50, 95])) if self._n else (float("nan"),) * 2
        sample = {"t_s": round(now - self._t0, 3), "rss_mb": round(resident_mb(), 3), "frames": self.frames,
                  "fps": round(self._n / (now - self._t_interval), 2) if now > self._t_interval else 0.0,
                  "latency_p50_ms": round(p50, 3), "latency_p95_ms": round(p95, 3),
                  "load_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}
        self.samples.append(sample)
        self._n, self._t_interval = 0, now
        if self.on_sample is not None:
            self.on_sample(sample)

    def close(self) -> None:
        pass


def analyse(samples: list[dict], warmup_s: float, window_s: float) -> dict:
    """Memory growth and p95 drift after warm-up (see the module doc); goals from issue 13."""
    post = [s for s in samples if s["t_s"] >= warmup_s]
    if len(post) < 4:
        raise SoakError(f"only {len(post)} samples after warm-up; soak longer or sample more often")
    t = np.array([s["t_s"] for s in post])
    rss = np.array([s["rss_mb"] for s in post])
    p95 = np.array([s["latency_p95_ms"] for s in post])
    first = t < t[0] + window_s
    last = t > t[-1] - window_s  # the same number of samples as the first window
    growth = float(np.median(rss[last]) - np.median(rss[first]))
    slope_per_hour = float(np.polyfit(t, rss, 1)[0] * 3600) if len(t) > 1 and np.ptp(t) > 0 else 0.0
    p95_first, p95_last = float(np.nanmedian(p95[first])), float(np.nanmedian(p95[last]))
    drift = p95_last / p95_first - 1 if p95_first > 0 else float("nan")
    return {
        "warmup_s": warmup_s,
        "window_s": window_s,
        "samples_after_warmup": len(post),
        "rss_mb_first_window": float(np.median(rss[first])),
        "rss_mb_last_window": float(np.median(rss[last])),
        "memory_growth_mb": growth,
        "memory_slope_mb_per_hour": slope_per_hour,
        "latency_p95_ms_first_window": p95_first,
        "latency_p95_ms_last_window": p95_last,
        "p95_drift": drift,
        "goals": {"memory_growth_mb_max": GOAL_GROWTH_MB, "p95_drift_max": GOAL_P95_DRIFT},
        "memory_ok": growth <= GOAL_GROWTH_MB,
        "p95_ok": bool(drift <= GOAL_P95_DRIFT),
    }


def run_soak(spec: str, model: str, options: SoakOptions, *, threads: int = 0, provider: str | None = None,
             crop_scale: float | None = None) -> dict:
    """Run the live loop on ``spec`` (looped, paced) for ``options.minutes``; returns the report."""
    from tqdm import tqdm

    from measure.bench_report import machine_description
    from realtime.pipeline import Pipeline
    from realtime.processor import FaceSwapProcessor
    from realtime.frames.sources import SourceError, open_source
    from realtime.swap.swappers import open_swapper

    options.check()
    machine = machine_description()
    try:
        swapper = open_swapper(model, providers=[provider] if provider else None, threads=threads,
                               crop_scale=crop_scale).prepare()
        source = open_source(spec, realtime=True, loop=True)
    except (SourceError, ValueError) as exc:  # ModelContractError, ReferenceError (a bad photo): ValueErrors
        raise SoakError(str(exc)) from exc
    processor = FaceSwapProcessor([swapper])
    duration_s = 60.0 * options.minutes
    with tqdm(total=round(duration_s), desc="soak", unit="s", disable=not options.progress) as bar:
        def progress(sample: dict) -> None:
            bar.update(round(sample["t_s"]) - bar.n)
            bar.set_postfix_str(f"rss {sample['rss_mb']:.1f} MB, p95 {sample['latency_p95_ms']:.1f} ms")

        probe = SoakProbe(duration_s, options.sample_s, on_sample=progress)
        pipeline = Pipeline(source, processor, [probe])
        probe.stop = pipeline.stop
        try:
            stats = pipeline.run()
        finally:
            processor.close()
    if stats.errors:
        raise SoakError(f"the pipeline failed: {'; '.join(stats.errors)}")
    if not probe.samples or probe.samples[-1]["t_s"] < duration_s - options.sample_s:
        raise SoakError(f"the source ended after {probe.samples[-1]['t_s'] if probe.samples else 0:.0f} s "
                        f"({stats.ended_by}); a soak needs a source that loops")
    return {
        "title": f"swapcam soak: {options.minutes:g} minutes on {machine['cpu']} ({machine['cores_usable']} cores)",
        "source": getattr(source, "describe", lambda: spec)(),
        "model": str(model),
        "provider": swapper.providers[0],
        "minutes": options.minutes,
        "sample_s": options.sample_s,
        "machine": machine,
        "load_average_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "run": stats.as_dict(),
        "result": analyse(probe.samples, options.warmup_s(), options.window_s()),
        "samples": probe.samples,
    }


def soak_summary(report: dict) -> str:
    """The lines a person reads."""
    r = report["result"]
    run = report["run"]
    return "\n".join([
        f"soak {report['minutes']:g} min: {run['frames_out']} frames, {run['fps']:.1f} fps, "
        f"latency p50/p95 {run['latency_p50_ms']:.1f}/{run['latency_p95_ms']:.1f} ms, dropped "
        f"{run['dropped_capture'] + run['dropped_process'] + run['dropped_output']}",
        f"memory after {r['warmup_s'] / 60:g} min warm-up: {r['rss_mb_first_window']:.1f} -> {r['rss_mb_last_window']:.1f} MB "
        f"(growth {r['memory_growth_mb']:+.2f} MB, goal <= {GOAL_GROWTH_MB:g}: {'ok' if r['memory_ok'] else 'NOT MET'}; "
        f"slope {r['memory_slope_mb_per_hour']:+.2f} MB/h)",
        f"latency p95 (median of {report['sample_s']:g}-s intervals over {r['window_s'] / 60:g}-min windows): "
        f"{r['latency_p95_ms_first_window']:.1f} -> {r['latency_p95_ms_last_window']:.1f} ms "
        f"(drift {100 * r['p95_drift']:+.1f} %, goal <= {100 * GOAL_P95_DRIFT:g} %: {'ok' if r['p95_ok'] else 'NOT MET'})",
        f"load average 1/5/15 min at start {report['machine']['load_average_1_5_15']}, at end {report['load_average_end']}",
    ])
