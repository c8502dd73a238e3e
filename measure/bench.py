"""`swapcam bench`: the real live pipeline (realtime.pipeline + realtime.processor) measured.

One ``Pipeline`` run per (configuration, chunk): configurations take turns in chunks of frames
(round-robin), so a busy neighbour or a thermal dip hits every configuration alike. Each
configuration keeps its own processor (landmark tracker, smoothing state, ONNX session) and its own
place in the video between its chunks. Frames are decoded once up front and served camera-like
(``bench_stamp.StampedSource``): paced at 30/60 fps, or as fast as the pipeline takes them.

Per configuration: per-stage ms (capture, landmarks, align, occlusion, swap, merge, mark, output) p50/p95/p99, the
pipeline's capture->sink latency and the pixel-stamped end-to-end latency, sustained fps, dropped
frames, CPU time / wall time (and per-core busy share), memory, the execution provider that ran,
and the model-only throughput of the same ONNX session with the ratio pipeline fps / model-only fps.
"""

from __future__ import annotations

import itertools
import resource
import time
import tracemalloc
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from measure.bench_stamp import FrameStore, StampClock, StampedSource, StampReaderSink
from realtime.swap.swappers import swapper_kind

STAGES = ("capture", "landmarks", "align", "occlusion", "swap", "merge", "mark", "output")
COMPARE_KEYS = {
    "model": "ONNX/DFM model file, or a photo / folder / video of the target (one-photo swap)",
    "pace": "camera rate in fps, or 'fast' (as fast as possible)",
    "smoothing": "landmark smoothing on/off",
    "color": "colour transfer: none/rct/lct/mkl",
    "threads": "ONNX Runtime intra-op threads (0 = its default)",
    "provider": "ONNX Runtime execution provider, e.g. CPUExecutionProvider, or torch",
    "crop_scale": "aligned crop side over DeepFaceLab's crop of the face type (1 = DeepFaceLab's)",
    "split": "landmarks and swap in two threads, overlapped (on), one thread (off), or the pipeline's choice (auto, the default: overlapped with 4+ cores; on fewer, adaptive for a paced camera, overlapped only while one thread cannot keep up)",
    "mark": "output marking (label + watermark, as live runs it) on/off",
    "occlusion": "the occlusion stage (hands, glasses, objects kept over the swap, as live runs it) on/off",
    "eyes": "the user's own eyes between the swapped lids (user) or the swap's own (model)",
    "preview": "the app's preview window (Qt, 1280x720, newest frame only) shown and fed every output frame: on/off",
}


class BenchError(RuntimeError):
    """A benchmark that cannot run as asked (bad option, source or model; a pipeline error)."""


@dataclass(frozen=True)
class BenchConfig:
    """One configuration of the live pipeline to measure."""

    model: str
    pace: float | None = 30.0  # camera fps; None = as fast as possible
    smoothing: bool = True
    color: str = "rct"
    threads: int = 0
    provider: str | None = None
    split: bool | None = None  # None: the pipeline decides
    mark: bool = True  # label + watermark on every output frame, as `swapcam live` does
    occlusion: bool = True  # the occlusion stage, as `swapcam live` runs it by default
    crop_scale: float | None = None  # None: the model's (metadata, else 1)
    eyes: str = "user"  # the processor's eye pass-through (realtime.face.eyes)
    preview: bool = False  # the app's preview window fed every output frame (measure.bench_preview)
    name: str = ""

    def session_key(self) -> tuple:
        """Configurations with the same key can share one model-only measurement."""
        return (self.model, self.threads, self.provider)


@dataclass
class BenchOptions:
    """How long and how to measure."""

    frames: int = 300  # measured frames per configuration
    warmup: int = 30  # frames per configuration run before measuring
    chunk: int = 50  # frames per turn in the round-robin
    max_load: int = 150  # frames decoded from the source (served ping-pong)
    stamp: bool = True  # pixel-stamped end-to-end latency
    model_only_runs: int = 100
    progress: bool = True
    trace_memory: bool = False  # tracemalloc peak per configuration (slows Python a little)


def parse_pace(text: str) -> float | None:
    """'30' -> 30.0; 'fast' / 'max' / '0' -> None (as fast as possible)."""
    if text.strip().lower() in ("fast", "max", "0", "none"):
        return None
    try:
        fps = float(text)
    except ValueError:
        raise BenchError(f"pace {text!r} is neither a frame rate (e.g. 30, 60) nor 'fast'") from None
    if not 0 < fps <= 1000:
        raise BenchError(f"pace {fps} fps is out of range (0, 1000]")
    return fps


def _parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("on", "true", "1", "yes"):
        return True
    if t in ("off", "false", "0", "no"):
        return False
    raise BenchError(f"{text!r} is not on/off")


def _set(config: BenchConfig, key: str, value: str) -> BenchConfig:
    if key == "model":
        return replace(config, model=value)
    if key == "pace":
        return replace(config, pace=parse_pace(value))
    if key == "smoothing":
        return replace(config, smoothing=_parse_bool(value))
    if key == "color":
        from realtime.merging.color_transfer import check_mode

        return replace(config, color=check_mode(value))
    if key == "threads":
        try:
            return replace(config, threads=int(value))
        except ValueError:
            raise BenchError(f"threads={value!r} is not an integer") from None
    if key == "provider":
        return replace(config, provider=value or None)
    if key == "split":
        return replace(config, split=None if value.strip().lower() == "auto" else _parse_bool(value))
    if key == "mark":
        return replace(config, mark=_parse_bool(value))
    if key == "occlusion":
        return replace(config, occlusion=_parse_bool(value))
    if key == "preview":
        return replace(config, preview=_parse_bool(value))
    if key == "crop_scale":
        from realtime.face.alignment import check_crop_scale

        try:
            return replace(config, crop_scale=check_crop_scale(value))
        except ValueError as exc:
            raise BenchError(f"crop_scale={value!r}: {exc}") from None
    if key == "eyes":
        from realtime.face.eyes import check_eyes

        try:
            return replace(config, eyes=check_eyes(value))
        except ValueError as exc:
            raise BenchError(f"eyes={value!r}: {exc}") from None
    raise BenchError(f"cannot compare {key!r}; choose from {', '.join(COMPARE_KEYS)}")


def parse_compare(item: str) -> tuple[str, list[str]]:
    """'color=none,rct' -> ('color', ['none', 'rct'])."""
    key, sep, values = item.partition("=")
    key = key.strip()
    if not sep or not values.strip():
        raise BenchError(f"--compare {item!r}: write KEY=VALUE1,VALUE2 (keys: {', '.join(COMPARE_KEYS)})")
    if key not in COMPARE_KEYS:
        raise BenchError(f"--compare {item!r}: unknown key {key!r}; choose from {', '.join(COMPARE_KEYS)}")
    return key, [v.strip() for v in values.split(",") if v.strip()]


def _label(key: str, value: str) -> str:
    if key == "model":
        return Path(value).stem
    if key == "pace":
        return "fast" if parse_pace(value) is None else f"{float(value):g}fps"
    return f"{key}={value}"


def expand_configs(base: BenchConfig, axes: list[tuple[str, list[str]]]) -> list[BenchConfig]:
    """Every combination of the compared values over ``base``, each named by what varies."""
    for key, values in axes:
        if len(set(values)) != len(values):
            raise BenchError(f"--compare {key}: a value is repeated ({values})")
    configs = []
    for combo in itertools.product(*[[(k, v) for v in vals] for k, vals in axes]):
        config = base
        for key, value in combo:
            config = _set(config, key, value)
        name = " ".join(_label(k, v) for k, v in combo if len(dict(axes)[k]) > 1) or "default"
        configs.append(replace(config, name=name))
    return configs


def load_frames(spec: str, max_frames: int) -> list[np.ndarray]:
    """Decode up to ``max_frames`` frames of a video file, image folder or 'demo' (not paced)."""
    from realtime.frames.sources import SourceError, open_source

    try:
        source = open_source(spec, realtime=False, loop=False)
    except SourceError as exc:
        raise BenchError(str(exc)) from exc
    frames = []
    try:
        while len(frames) < max_frames:
            frame = source.read()
            if frame is None:
                break
            frames.append(frame)
    finally:
        source.close()
    if len(frames) < 2:
        raise BenchError(f"source {spec!r} gave {len(frames)} frame(s); a benchmark needs a video of at least 2")
    return frames


def _percentiles(values) -> dict:
    arr = np.asarray(values, np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "count": 0}
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(arr.mean()), "count": int(arr.size)}


def _cpu_ticks() -> list[tuple[int, int]] | None:
    """(busy, total) jiffies per core from /proc/stat (system-wide: other processes count too)."""
    try:
        with open("/proc/stat", encoding="utf-8") as fh:
            rows = [ln.split() for ln in fh if ln.startswith("cpu") and ln[3].isdigit()]
    except OSError:
        return None
    ticks = []
    for row in rows:
        vals = [int(v) for v in row[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        ticks.append((sum(vals) - idle, sum(vals)))
    return ticks


def _rss_mb() -> tuple[float, float]:
    """(peak, current) resident memory of this process in MiB."""
    from measure.soak import resident_mb

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return peak, resident_mb()


@dataclass
class _Run:
    """A configuration's live objects and what its measured chunks collected."""

    config: BenchConfig
    swapper: object
    processor: object
    store: FrameStore
    marker: object = None  # realtime.marking.marker.OutputMarker, or None with mark off
    clock: StampClock = field(default_factory=StampClock)
    stages: dict = field(default_factory=lambda: {s: [] for s in STAGES})
    latency: list = field(default_factory=list)
    faces: list = field(default_factory=list)
    fps_frames: int = 0
    fps_span: float = 0.0
    captured: int = 0
    out: int = 0
    dropped_capture: int = 0
    dropped_process: int = 0
    dropped_output: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    core_busy: np.ndarray | None = None
    core_total: np.ndarray | None = None
    setup_s: float = 0.0
    split_used: bool | None = None
    pipelining: str | None = None  # serial, split or adaptive (realtime.pipeline.choose_pipelining)
    governor: object = None  # adaptive runs: one realtime.overlap.OverlapGovernor kept across the chunks
    overlapped: int = 0  # measured chunks' frames rendered with landmarks and render overlapped
    rendered: int = 0  # measured chunks' frames through the processing stage(s)
    rss_after_setup_mb: float = 0.0
    traced_peak_mb: float = 0.0
    preview: object = None  # measure.bench_preview.PreviewHarness, for preview configurations
    preview_shown: int = 0  # measured frames the preview was handed and painted


def _build(config: BenchConfig, frames: list[np.ndarray]) -> _Run:
    from realtime.merging.merge import MergeSettings
    from realtime.processor import FaceSwapProcessor
    from realtime.face.smoothing import LandmarkSmoother
    from realtime.swap.swappers import open_swapper

    t = time.perf_counter()
    try:
        swapper = open_swapper(config.model, providers=[config.provider] if config.provider else None,
                               threads=config.threads, crop_scale=config.crop_scale).prepare()
    except ValueError as exc:  # ModelContractError, ReferenceError (a bad photo), unknown provider
        raise BenchError(f"configuration {config.name!r}: {exc}") from exc
    occlusion = None
    if config.occlusion:
        from realtime.merging.occlusion import open_occlusion

        try:
            occlusion = open_occlusion()
        except ValueError as exc:
            raise BenchError(f"configuration {config.name!r}: {exc}") from exc
    processor = FaceSwapProcessor([swapper], smoother=LandmarkSmoother(enabled=config.smoothing),
                                  merge=MergeSettings(color=config.color).validate(), occlusion=occlusion,
                                  eyes=config.eyes)
    from realtime.marking.marker import OutputMarker

    marker = OutputMarker.for_swappers(lambda: processor.swapper) if config.mark else None
    run = _Run(config, swapper, processor, FrameStore(frames), marker)
    run.setup_s = time.perf_counter() - t
    return run


def _chunk(run: _Run, n: int, record: bool, stamp: bool, on_frame) -> None:
    """One Pipeline run of ``n`` output frames for ``run``'s configuration."""
    from realtime.pipeline import Pipeline
    from realtime.frames.sinks import NullSink

    source = StampedSource(run.store, run.clock, run.config.pace, stamp=stamp)
    sink = StampReaderSink(NullSink(), run.clock, on_frame)
    sinks = [sink] + ([run.preview.slot] if run.preview is not None else [])
    shown_before = run.preview.shown if run.preview is not None else 0
    latencies_before = len(run.clock.latency_ms)
    unreadable_before = run.clock.unreadable
    ticks0, cpu0 = _cpu_ticks(), time.process_time()
    extra = {"marker": run.marker} if run.marker is not None else {}
    if run.config.split is not None:
        extra["split"] = run.config.split
    if run.governor is None:
        from realtime.overlap import OverlapGovernor

        run.governor = OverlapGovernor()
    try:
        pipeline = Pipeline(source, run.processor, sinks, record_frames=True, governor=run.governor, **extra)
    except (TypeError, ValueError) as exc:
        raise BenchError(f"configuration {run.config.name!r}: this pipeline cannot run split={run.config.split} ({exc})") from exc
    run.split_used = getattr(pipeline, "split", None)
    run.pipelining = getattr(pipeline, "pipelining", None)
    stats = pipeline.run(max_frames=n)
    cpu1, ticks1 = time.process_time(), _cpu_ticks()
    if stats.errors:
        raise BenchError(f"configuration {run.config.name!r}: pipeline failed: {'; '.join(stats.errors)}")
    if not record:
        del run.clock.latency_ms[latencies_before:]
        run.clock.unreadable = unreadable_before
        return
    for s in STAGES:
        run.stages[s].extend(stats.stage_ms.get(s, np.zeros(0)).tolist())
    run.latency.extend(stats.latency_ms.tolist())
    run.faces.extend(stats.faces.tolist())
    if len(stats.t_output) > 1:
        run.fps_frames += len(stats.t_output) - 1
        run.fps_span += float(stats.t_output[-1] - stats.t_output[0])
    if run.preview is not None:
        run.preview_shown += run.preview.shown - shown_before
    run.captured += stats.frames_captured
    run.overlapped += stats.overlapped_frames
    run.rendered += stats.rendered_frames
    run.out += stats.frames_out
    run.dropped_capture += stats.dropped_capture
    run.dropped_process += getattr(stats, "dropped_process", 0)
    run.dropped_output += stats.dropped_output
    run.cpu_s += cpu1 - cpu0
    run.wall_s += stats.wall_s
    if ticks0 and ticks1 and len(ticks0) == len(ticks1):
        busy = np.array([b1 - b0 for (b0, _), (b1, _) in zip(ticks0, ticks1)], np.float64)
        total = np.array([t1 - t0 for (_, t0), (_, t1) in zip(ticks0, ticks1)], np.float64)
        run.core_busy = busy if run.core_busy is None else run.core_busy + busy
        run.core_total = total if run.core_total is None else run.core_total + total


def _model_only(runs: list[_Run], frames: list[np.ndarray], total_runs: int) -> dict[tuple, dict]:
    """Model-only throughput per distinct ONNX session setting, on a real aligned face (batch 1),
    interleaved across settings in three rounds."""
    from realtime.face.alignment import align_face, transform_points
    from realtime.face.landmarks import FaceLandmarker

    with FaceLandmarker(static_images=True) as lm:
        faces = lm.detect(frames[0])
    by_key: dict[tuple, _Run] = {}
    for run in runs:
        by_key.setdefault(run.config.session_key(), run)
    samples: dict[tuple, list[float]] = {k: [] for k in by_key}
    inputs = {}
    for key, run in by_key.items():
        r, face_type = run.swapper.resolution, run.swapper.face_type
        if faces:
            aligned = align_face(frames[0], faces[0].landmarks68, r, face_type, run.swapper.crop_scale)
            inputs[key] = (aligned.image[None],)
            if getattr(run.swapper, "needs_mesh", False):  # the one-photo swap warps by the user's mesh
                mesh = transform_points(faces[0].points, aligned.matrix).astype(np.float32)
                inputs[key] += (mesh[None],)
        elif getattr(run.swapper, "needs_mesh", False):
            raise BenchError(f"no face in the first frame of the source: the one-photo swap of {run.config.name!r} "
                             "cannot be timed on its own without one")
        else:
            import cv2

            inputs[key] = (cv2.resize(frames[0], (r, r))[None],)
        run.swapper.get(*inputs[key])  # warm
    per_round = max(1, total_runs // 3)
    for _ in range(3):
        for key, run in by_key.items():
            for _ in range(per_round):
                t = time.perf_counter()
                run.swapper.get(*inputs[key])
                samples[key].append((time.perf_counter() - t) * 1000)
    out = {}
    for key, ms in samples.items():
        stats = _percentiles(ms)
        out[key] = {**stats, "fps": 1000.0 / stats["mean"] if stats["mean"] else None, "batch": 1}
    return out


def _summary(run: _Run, model_only: dict, stamp: bool) -> dict:
    fps = run.fps_frames / run.fps_span if run.fps_span > 0 else None
    mo = model_only[run.config.session_key()]
    cores = None
    if run.core_busy is not None and run.core_total is not None:
        cores = [round(float(b / t * 100), 1) if t else None for b, t in zip(run.core_busy, run.core_total)]
    n_cores = len(cores) if cores else 1
    process_pct = run.cpu_s / run.wall_s * 100 if run.wall_s else None
    e2e = run.clock.latency_ms
    config = asdict(run.config)
    config["pace"] = "fast" if run.config.pace is None else run.config.pace
    return {
        "name": run.config.name,
        "config": config,
        "provider": run.swapper.providers[0],
        "split_used": run.split_used,  # landmarks and swap ran in two threads
        "pipelining": run.pipelining,  # serial, split or adaptive
        "overlapped_share": run.overlapped / run.rendered if run.rendered else None,  # rendered while overlapped
        "providers": list(run.swapper.providers),
        "model": {"path": str(run.swapper.path),
                  "kind": swapper_kind(run.swapper.path),
                  "resolution": run.swapper.resolution, "face_type": run.swapper.face_type,
                  "crop_scale": run.swapper.crop_scale,
                  "input_dtype": np.dtype(getattr(run.swapper, "input_dtype", np.uint8)).name},
        "frames_out": run.out,
        "frames_captured": run.captured,
        "dropped": {"capture": run.dropped_capture, "between_stages": run.dropped_process, "output": run.dropped_output,
                    "total": run.dropped_capture + run.dropped_process + run.dropped_output},
        "fps": fps,
        "faces_per_frame": float(np.mean(run.faces)) if run.faces else None,
        "stages_ms": {s: _percentiles(v) for s, v in run.stages.items()},
        "latency_ms": _percentiles(run.latency),
        "e2e_latency_ms": _percentiles(e2e),
        "e2e_unreadable_frames": run.clock.unreadable if stamp else None,
        "latency_ms_samples": [round(v, 3) for v in (e2e if stamp and e2e else run.latency)],
        "cpu": {
            "process_percent": process_pct,  # 100 = one core busy all the time
            "process_share_of_machine_percent": process_pct / n_cores if process_pct is not None else None,
            "per_core_busy_percent_system_wide": cores,
            "process_cpu_s": run.cpu_s,
            "wall_s": run.wall_s,
        },
        "memory": {"rss_peak_mb_after_setup": run.rss_after_setup_mb, "tracemalloc_peak_mb": run.traced_peak_mb or None},
        "setup_s": run.setup_s,
        "swapper_warmup_ms": run.swapper.warmup_ms,
        "preview_frames_shown": run.preview_shown if run.config.preview else None,
        "model_only": mo,
        "pipeline_over_model_only": (fps / mo["fps"]) if fps and mo.get("fps") else None,
    }


def _measure(configs: list[BenchConfig], frames: list[np.ndarray], options: BenchOptions, runs: list[_Run],
             preview) -> dict:
    """Build every configuration (into ``runs``), warm them up, measure them in turns, then time the models alone;
    returns the model-only figures."""
    from tqdm import tqdm

    for config in configs:
        run = _build(config, frames)
        run.preview = preview if config.preview else None
        run.rss_after_setup_mb = _rss_mb()[0]
        runs.append(run)
    total = len(runs) * (options.warmup + options.frames)
    with tqdm(total=total, desc="bench", unit="frame", disable=not options.progress) as bar:
        if options.warmup:
            for run in runs:
                _chunk(run, options.warmup, False, options.stamp, bar.update)
        remaining = {id(r): options.frames for r in runs}
        while any(remaining.values()):
            for run in runs:
                n = min(options.chunk, remaining[id(run)])
                if n <= 0:
                    continue
                bar.set_postfix_str(run.config.name)
                if options.trace_memory:
                    tracemalloc.reset_peak()
                _chunk(run, n, True, options.stamp, bar.update)
                if options.trace_memory:
                    run.traced_peak_mb = max(run.traced_peak_mb, tracemalloc.get_traced_memory()[1] / 2**20)
                remaining[id(run)] -= n
    return _model_only(runs, frames, options.model_only_runs)


def run_bench(spec: str, configs: list[BenchConfig], options: BenchOptions) -> dict:
    """Measure every configuration on ``spec`` (video file, image folder or 'demo'); returns the report."""
    from measure.bench_report import machine_description

    if not configs:
        raise BenchError("no configuration to measure")
    if options.frames < 2 or options.chunk < 2:
        raise BenchError("--frames and --chunk must be at least 2")
    machine = machine_description()
    frames = load_frames(spec, options.max_load)
    preview = None
    if any(c.preview for c in configs):
        from measure.bench_preview import PreviewHarness

        h, w = frames[0].shape[:2]
        preview = PreviewHarness((w, h))
    if options.trace_memory:
        tracemalloc.start()
    runs: list[_Run] = []

    def measure() -> dict:
        return _measure(configs, frames, options, runs, preview)

    try:
        model_only = preview.run(measure) if preview is not None else measure()
    finally:
        for run in runs:
            run.processor.close()
        if options.trace_memory:
            tracemalloc.stop()
    peak, current = _rss_mb()
    h, w = frames[0].shape[:2]
    return {
        "title": f"swapcam bench on {machine['cpu']} ({machine['cores_usable']} cores)",
        "source": spec,
        "frames_loaded": len(frames),
        "frame_size": f"{w}x{h}",
        "frames_per_config": options.frames,
        "warmup": options.warmup,
        "chunk": options.chunk,
        "latency_kind": ("pixel-stamped end-to-end (source hand-over -> sink, queues included)" if options.stamp
                         else "pipeline clocks (capture -> sink)"),
        "latency_label": "end-to-end, pixel stamp" if options.stamp else "pipeline clocks",
        "machine": machine,
        "memory": {"rss_peak_mb": peak, "rss_now_mb": current},
        "runs": [_summary(run, model_only, options.stamp) for run in runs],
    }
