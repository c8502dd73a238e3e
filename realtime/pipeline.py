"""The live loop: capture -> process -> output in three threads joined by one-slot queues.

Each slot holds at most one frame and the newest wins (an unread frame that is replaced counts as a
drop), so latency never grows with load. For a source that is not ``live`` (a video file read as
fast as possible) the slots block instead, so every frame is processed, in order.

Library API (stable; ``swapcam bench`` builds on it)::

    pipe = Pipeline(source, processor, [sink, ...])
    stats = pipe.run(max_frames=None)     # blocks; Ctrl-C / source end / stop() end it cleanly
    stats = pipe.stats()                  # PipelineStats: fps, latency and per-stage percentiles, drops

Memory does not grow with the run: the figures are streaming percentiles (``realtime.run_figures``)
and the HUD reads a rolling window. Per-frame arrays (``PipelineStats.stage_ms``, ``latency_ms``,
``seq``, ``faces``, ``t_output``) are kept only with ``record_frames=True`` (``swapcam bench``, tests).

``processor.process(frame: Frame, timings: dict[str, float]) -> (out: np.ndarray, faces: int)``
adds its own stage times (ms) to ``timings`` (e.g. landmarks, align, swap, merge). A processor that
also has ``detect(frame, timings) -> state`` and ``render(frame, state, timings) -> (out, faces)``
is run as two threads (landmarks of frame n+1 overlap the swap of frame n; ``split=False`` turns
that off), joined by another one-slot queue. By default (``split=None``) a live source on fewer than 4 cores
runs them ``adaptive``: one frame at a time while that keeps up with the camera, overlapped when it does not
(``realtime.overlap``). A sink has
``write(frame: np.ndarray, info: FrameInfo) -> None`` and ``close()``; a sink may call
``pipeline.stop()`` (the window's quit key does).

``marker`` (optional, e.g. ``realtime.marking.marker.OutputMarker``): ``marker(image) -> image`` marks each
output frame in place before any sink sees it (timed as stage ``mark``); the captured frame itself
(``FrameInfo.source_image``) is never marked.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from realtime.frames.sources import CaptureThread, Frame
from realtime.overlap import OverlapGovernor
from realtime.run_figures import RollingWindow, RunFigures, SeriesFigures

STAGES = ("capture", "landmarks", "align", "occlusion", "swap", "merge", "mark", "output")


class LatestSlot:
    """A queue of one item where the newest wins (``put`` replaces and counts a drop), or blocks.

    ``blocking=True`` makes ``put`` wait until the slot is empty (lossless, for non-live sources).
    """

    def __init__(self, blocking: bool = False) -> None:
        self._item = None
        self._cond = threading.Condition()
        self._closed = False
        self.blocking = blocking
        self.dropped = 0

    def put(self, item) -> bool:
        """Store ``item``; False when the slot is closed."""
        with self._cond:
            if self.blocking:
                while self._item is not None and not self._closed:
                    self._cond.wait(0.1)
            if self._closed:
                return False
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None):
        """The item (removing it); None on timeout or when closed and empty."""
        with self._cond:
            deadline = None if timeout is None else time.perf_counter() + timeout
            while self._item is None and not self._closed:
                remaining = None if deadline is None else deadline - time.perf_counter()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining if remaining is not None else 0.1)
            item, self._item = self._item, None
            self._cond.notify_all()
            return item

    def wait_empty(self, timeout: float) -> bool:
        """Wait until the slot is empty (or closed); True if it is empty."""
        with self._cond:
            deadline = time.perf_counter() + timeout
            while self._item is not None and not self._closed:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return self._item is None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


@dataclass
class FrameInfo:
    """What a sink learns about a frame: its sequence number, capture time, stage timings (ms),
    the number of faces swapped, rolling figures for a HUD, and the unprocessed frame."""

    seq: int
    t_capture: float
    timings: dict[str, float]
    faces: int
    fps: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    source_image: np.ndarray | None = None  # the captured frame before processing (read-only)


@dataclass
class _Processed:
    frame: Frame
    image: np.ndarray
    timings: dict[str, float]
    faces: int


@dataclass
class PipelineStats:
    """Figures of one run.

    Always (bounded memory): ``frames_out``, ``fps``, ``latency`` and ``stages`` (SeriesFigures: count,
    mean, p50/p95/p99 ms, within 1 %; ``latency`` is capture -> last sink written; ``stages`` maps
    stage -> figures, capture = the source's read after pacing, a stage missing in a frame counts 0 ms).

    Per-frame arrays, in output order, only from ``Pipeline(record_frames=True)`` (else empty):
    stage_ms: stage -> (n,) float64 ms; latency_ms: (n,) ms; seq: (n,) sequence numbers; faces: (n,);
    t_output: (n,) perf_counter s when the frame left the sinks.
    """

    frames_captured: int
    frames_out: int
    dropped_capture: int
    dropped_output: int
    wall_s: float
    fps: float = 0.0
    latency: SeriesFigures = SeriesFigures(0, float("nan"), float("nan"), float("nan"), float("nan"))
    stages: dict[str, SeriesFigures] = field(default_factory=dict)
    ended_by: str = "running"
    errors: list[str] = field(default_factory=list)
    dropped_process: int = 0  # between the landmark and render stages (split processors)
    pipelining: str = "serial"  # serial (one thread), split (two, overlapped) or adaptive (see realtime.overlap)
    overlapped_frames: int = 0  # frames rendered with landmarks and render overlapped (split: all)
    rendered_frames: int = 0  # frames through the processing stage(s), output or dropped after (adaptive)
    stage_ms: dict[str, np.ndarray] = field(default_factory=dict)
    latency_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seq: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    faces: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    t_output: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def dropped(self) -> int:
        return self.dropped_capture + self.dropped_process + self.dropped_output

    def latency_percentile(self, q: float) -> float:
        """Capture -> sink latency percentile, ms (q: 50, 95 or 99)."""
        return {50: self.latency.p50, 95: self.latency.p95, 99: self.latency.p99}[q]

    def summary(self) -> str:
        """A few lines a person reads: fps, latency p50/p95, per-stage mean/p95 ms, drops."""
        lines = [
            f"frames out {self.frames_out} of {self.frames_captured} captured, dropped {self.dropped} "
            f"(capture {self.dropped_capture}, between stages {self.dropped_process}, output {self.dropped_output}), "
            f"ended by {self.ended_by}",
            f"output fps {self.fps:.1f}; capture->sink latency p50 {self.latency.p50:.1f} ms, "
            f"p95 {self.latency.p95:.1f} ms; processing {self.pipelining}"
            + (f" ({self.overlapped_frames} of {self.rendered_frames} frames overlapped)"
               if self.pipelining == "adaptive" else ""),
        ]
        parts = [f"{name} {f.mean:.1f}/{f.p95:.1f}" for name, f in self.stages.items() if f.count]
        lines.append("stage ms mean/p95: " + ", ".join(parts))
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """JSON-friendly summary figures."""
        return {
            "frames_captured": self.frames_captured, "frames_out": self.frames_out,
            "dropped_capture": self.dropped_capture, "dropped_process": self.dropped_process,
            "dropped_output": self.dropped_output,
            "fps": self.fps, "latency_p50_ms": self.latency.p50,
            "latency_p95_ms": self.latency.p95, "latency_p99_ms": self.latency.p99,
            "wall_s": self.wall_s, "ended_by": self.ended_by,
            "pipelining": self.pipelining, "overlapped_frames": self.overlapped_frames,
            "rendered_frames": self.rendered_frames,
            "stage_ms_mean": {k: f.mean if f.count else 0.0 for k, f in self.stages.items()},
            "stage_ms_p95": {k: f.p95 if f.count else 0.0 for k, f in self.stages.items()},
        }


class PassThrough:
    """A processor that returns the frame unchanged (for measuring the loop itself)."""

    def process(self, frame: Frame, timings: dict[str, float]) -> tuple[np.ndarray, int]:
        return frame.image, 0


SPLIT_MIN_CORES = 4


def split_pays_off(cores: int | None = None) -> bool:
    """Whether landmarks and swap should always overlap in two threads by default (4+ cores).

    On 2 cores the two threads share the CPU: where one thread keeps up (720p30) they bought no fps and, on
    an earlier 2-core machine, about 1.5x the latency; where it cannot (1080p60) they buy fps. Hence
    ``adaptive`` there (README, "Swap live").
    """
    return (cores if cores is not None else os.cpu_count() or 1) >= SPLIT_MIN_CORES


def choose_pipelining(can_split: bool, split: bool | None, live: bool, cores: int | None = None) -> str:
    """``serial`` (one processing thread), ``split`` (two, always overlapped) or ``adaptive`` (two, overlapped
    only while one frame's work is longer than the camera's frame interval: ``realtime.overlap``).

    ``split`` True/False forces split/serial; None chooses: split with 4+ cores, adaptive for a live source on
    fewer, serial for a file read as fast as possible on fewer (no camera interval to keep up with).
    """
    if split and not can_split:
        raise ValueError("split=True needs a processor with detect() and render()")
    if split is not None or not can_split:
        return "split" if split else "serial"
    if split_pays_off(cores):
        return "split"
    return "adaptive" if live else "serial"


class Pipeline:
    """capture thread -> [slot] -> processing thread(s) -> [slot] -> output (the thread calling ``run``).

    Output runs in the calling thread so that a preview window (which needs the main thread on some
    systems) and Ctrl-C (delivered to the main thread) work. ``hud_window`` frames feed the HUD's
    rolling fps and latency. ``record_frames=True`` also keeps every frame's figures as arrays
    (memory grows with the run: for measurements of bounded length, not for live use).
    """

    def __init__(self, source, processor, sinks: list, *, hud_window: int = 60, split: bool | None = None,
                 marker=None, record_frames: bool = False, governor: OverlapGovernor | None = None) -> None:
        self.source = source
        self.marker = marker
        self.processor = processor
        can_split = hasattr(processor, "detect") and hasattr(processor, "render")
        self.pipelining = choose_pipelining(can_split, split, getattr(source, "live", True))
        self.split = self.pipelining != "serial"  # two processing threads
        # adaptive: decides the overlap; pass one in to keep its figures across runs (swapcam bench's chunks)
        self.governor = (governor or OverlapGovernor()) if self.pipelining == "adaptive" else None
        self._render_idle = threading.Event()  # adaptive, not overlapping: the landmark stage waits for it
        self.sinks = list(sinks)
        self.hud_window = hud_window
        self.record_frames = record_frames
        self._stop = threading.Event()  # every thread ends (a stop request, an error, the end of the run)
        self._stop_requested = threading.Event()  # stop() was called: nothing more begins output
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._figures = RunFigures(STAGES)
        self._hud = RollingWindow(self.hud_window)
        # per-frame (seq, t_cap, t_out, timings, faces), only with record_frames
        self._records: list[tuple[int, float, float, dict[str, float], int]] = []
        self._errors: list[str] = []
        self._ended_by = "running"
        self._t0 = self._t1 = 0.0
        self._captured = 0
        self._in_slot = self._out_slot = None
        self._mid_slots: list[LatestSlot] = []
        gov = self.governor
        self._governor_before = (gov.overlapped, gov.processed_frames) if gov is not None else (0, 0)

    def stop(self) -> None:
        """Ask the loop to end (thread-safe; sinks may call it).

        The contract: no sink receives a frame whose output began after ``stop()`` was called. Called
        from a sink's ``write``, the frame being written is the last one; it still reaches the sinks
        after the caller in this frame's loop, and every sink sees the same frames. Frames already
        captured or processed but not yet output are discarded, not written. (An error in a stage
        also ends the run, but frames it had already processed are still written.)
        """
        self._stop_requested.set()
        self._stop.set()

    def _stage_loop(self, name: str, work, src: LatestSlot, dst: LatestSlot, ready=None) -> None:
        """Move items from ``src`` through ``work`` into ``dst`` until ``src`` is closed and empty;
        ``ready()`` (optional, waits up to 0.1 s) must be True before an item is taken."""
        try:
            while not self._stop.is_set():
                # Take a new item only once the next stage has taken the previous result: the freshest
                # frame is picked just in time, and no work is done for a frame that would wait.
                if dst in self._mid_slots and not dst.wait_empty(0.1):
                    continue
                if ready is not None and not ready():
                    continue
                item = src.get(timeout=0.1)
                if item is None:
                    if src.closed:
                        break
                    continue
                if not dst.put(work(item)):
                    break
        except BaseException as exc:
            self._errors.append(f"{name}: {type(exc).__name__}: {exc}")
            self._ended_by = "error"
            self._stop.set()
        finally:
            dst.close()

    def _stages(self) -> list:
        """The processing stages as (name, item -> item, ready) functions: one, or detect + render when split
        (adaptive: the landmark stage is ready for a frame while overlapping, or once the render is idle)."""
        proc, governor, idle = self.processor, self.governor, self._render_idle
        if self.split:
            def detect(frame: Frame):
                timings: dict[str, float] = {}
                t0 = time.perf_counter()
                state = proc.detect(frame, timings)
                idle.clear()  # handed to the render stage
                return frame, timings, state, (time.perf_counter() - t0) * 1000

            def render(item) -> _Processed:
                frame, timings, state, detect_ms = item
                t0 = time.perf_counter()
                try:
                    image, faces = proc.render(frame, state, timings)
                finally:
                    if governor is not None:
                        governor.processed(detect_ms + (time.perf_counter() - t0) * 1000)
                    idle.set()
                return _Processed(frame, image, timings, faces)

            ready = None if governor is None else (lambda: governor.overlap or idle.wait(0.1))
            return [("landmarks", detect, ready), ("render", render, None)]

        def process(frame: Frame) -> _Processed:
            timings: dict[str, float] = {}
            image, faces = proc.process(frame, timings)
            return _Processed(frame, image, timings, faces)

        return [("processing", process, None)]

    def run(self, max_frames: int | None = None) -> PipelineStats:
        """Run until the source ends, ``max_frames`` frames are out, ``stop()`` or Ctrl-C.

        Always releases the source and closes every sink (files finalised). Returns ``stats()``;
        a KeyboardInterrupt is absorbed (``ended_by='interrupt'``), other errors are re-raised
        after the clean-up.
        """
        self._stop.clear()
        self._stop_requested.clear()
        self._reset()
        blocking = not getattr(self.source, "live", True)
        stages = self._stages()
        self._in_slot, self._out_slot = LatestSlot(blocking), LatestSlot(blocking)
        # Between processing stages the slot blocks and the landmark stage waits for it to empty before
        # taking a frame: no landmarks for frames that would be dropped, no frame waiting stale.
        self._mid_slots = [LatestSlot(blocking=True) for _ in stages[1:]]
        slots = [self._in_slot, *self._mid_slots, self._out_slot]

        governor = self.governor
        if governor is not None:
            governor.forget_capture()
        self._render_idle.set()

        def deliver(frame: Frame) -> bool:
            self._captured += 1
            if governor is not None:
                governor.captured(frame.t)
            return self._in_slot.put(frame) and not self._stop.is_set()

        capture = CaptureThread(self.source, deliver)
        workers = [threading.Thread(target=self._stage_loop, args=(name, fn, slots[i], slots[i + 1], ready),
                                    name=name, daemon=True) for i, (name, fn, ready) in enumerate(stages)]
        self._t0 = time.perf_counter()
        capture.start()
        for worker in workers:
            worker.start()
        failure: BaseException | None = None
        try:
            while True:
                if capture.ended.is_set() and not self._in_slot.closed:
                    self._in_slot.close()  # let the worker drain the last frame, then end
                item = self._out_slot.get(timeout=0.1)
                if self._stop_requested.is_set():
                    break  # nothing begins output after stop() (see stop())
                if item is None:
                    if self._out_slot.closed or self._stop.is_set():
                        break
                    continue
                self._emit(item)
                if max_frames is not None and self._figures.frames >= max_frames:
                    self._ended_by = "max_frames"
                    break
            if self._ended_by == "running":
                self._ended_by = "stopped" if self._stop.is_set() else "source ended"
        except KeyboardInterrupt:
            self._ended_by = "interrupt"
        except BaseException as exc:
            self._ended_by = "error"
            self._errors.append(f"output: {type(exc).__name__}: {exc}")
            failure = exc
        finally:
            self._stop.set()
            capture.stop()
            for slot in slots:
                slot.close()
            capture.join(timeout=5.0)
            for worker in workers:
                worker.join(timeout=10.0)
            self._t1 = time.perf_counter()
            self._close_all()
        if capture.error is not None:
            self._errors.append(f"capture: {type(capture.error).__name__}: {capture.error}")
            if self._ended_by == "source ended":
                self._ended_by = "error"
        if failure is not None:
            raise failure
        return self.stats()

    def _emit(self, item: _Processed) -> None:
        image = item.image
        if self.marker is not None:
            t_mark = time.perf_counter()
            if image is item.frame.image:  # no face drawn: mark a copy, the captured frame stays as it was
                image = image.copy()
            image = self.marker(image)
            item.timings["mark"] = (time.perf_counter() - t_mark) * 1000
        t = time.perf_counter()
        info = FrameInfo(item.frame.seq, item.frame.t_capture, item.timings, item.faces,
                         source_image=item.frame.image)
        if len(self._hud):
            info.fps = self._hud.fps_at(t)
            info.latency_p50_ms, info.latency_p95_ms = self._hud.latency_percentiles(50, 95)
        for sink in self.sinks:
            sink.write(image, info)
        t_out = time.perf_counter()
        item.timings["output"] = (t_out - t) * 1000
        item.timings["capture"] = item.frame.read_ms
        self._record(item, t_out)

    def _record(self, item: _Processed, t_out: float) -> None:
        """Keep the frame's figures: streaming figures and the HUD window always, arrays on request."""
        latency_ms = (t_out - item.frame.t_capture) * 1000
        with self._lock:
            self._figures.add(t_out, latency_ms, item.timings, item.faces)
            self._hud.add(t_out, latency_ms)
            if self.record_frames:
                self._records.append((item.frame.seq, item.frame.t_capture, t_out, item.timings, item.faces))

    def _close_all(self) -> None:
        try:
            self.source.close()
        except Exception as exc:
            self._errors.append(f"closing source: {exc}")
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                self._errors.append(f"closing {type(sink).__name__}: {exc}")

    def live_figures(self) -> dict[str, float]:
        """Cheap figures to read while it runs (a front-end polls them): output fps and latency p50/p95 ms over
        the HUD's rolling window, frames out and captured, frames dropped so far (all slots), and whether the
        landmarks of the next frame overlap the swap of this one now (``overlapping``: split always, serial
        never, adaptive as its governor decides)."""
        now = time.perf_counter()
        with self._lock:
            fps = self._hud.fps_at(now) if len(self._hud) else 0.0
            p50, p95 = self._hud.latency_percentiles(50, 95)
            frames = self._figures.frames
        slots = [s for s in (self._in_slot, *self._mid_slots, self._out_slot) if s is not None]
        return {"fps": fps, "latency_p50_ms": p50, "latency_p95_ms": p95, "frames": frames,
                "captured": self._captured, "dropped": sum(s.dropped for s in slots),
                "overlapping": self.governor.overlap if self.governor is not None else self.pipelining == "split"}

    def _overlap_counts(self, frames_out: int) -> dict[str, int]:
        """overlapped_frames and rendered_frames of this run (adaptive: the governor's counts)."""
        if self.governor is not None:
            (o0, p0), gov = self._governor_before, self.governor
            return {"overlapped_frames": gov.overlapped - o0, "rendered_frames": gov.processed_frames - p0}
        return {"overlapped_frames": frames_out if self.pipelining == "split" else 0, "rendered_frames": frames_out}

    def stats(self) -> PipelineStats:
        """Figures so far (callable during or after ``run``)."""
        with self._lock:
            figures = self._figures
            stages = {name: figures.stages[name].figures() for name in figures.stage_names}
            latency, fps, frames_out = figures.latency.figures(), figures.fps, figures.frames
            records = list(self._records)
        end = self._t1 or time.perf_counter()
        arrays = {}
        if self.record_frames:
            names = list(stages)
            arrays = dict(
                stage_ms={s: np.array([r[3].get(s, 0.0) for r in records], np.float64) for s in names},
                latency_ms=np.array([(r[2] - r[1]) * 1000 for r in records], np.float64),
                seq=np.array([r[0] for r in records], np.int64),
                faces=np.array([r[4] for r in records], np.int64),
                t_output=np.array([r[2] for r in records], np.float64),
            )
        return PipelineStats(
            frames_captured=self._captured,
            frames_out=frames_out,
            dropped_capture=self._in_slot.dropped if self._in_slot else 0,
            dropped_output=self._out_slot.dropped if self._out_slot else 0,
            dropped_process=sum(slot.dropped for slot in self._mid_slots),
            wall_s=end - self._t0 if self._t0 else 0.0,
            fps=fps,
            latency=latency,
            stages=stages,
            ended_by=self._ended_by,
            errors=list(self._errors),
            pipelining=self.pipelining,
            **self._overlap_counts(frames_out),
            **arrays,
        )
