"""`make gpu-bench`: the live pipeline (``swapcam bench``) on a GPU machine, through the torch CUDA path.

  python -m measure.gpu_bench pack [--wheels .whl]      (here: fetch the wheels that machine lacks)
  python -m measure.gpu_bench run --out OUT_DIR         (there: 1280x720 and 1920x1080, paced 30/60 and fast)

``pack`` downloads the MediaPipe wheel for CPython 3.12 (and the protobuf it needs) into an ignored
folder and prints the command for the GPU machine, which has torch with CUDA but no MediaPipe and no
onnxruntime-gpu. ``run`` renders the built-in demo source (the astronaut, moving) at each frame
size into a clip, runs ``measure.bench`` on it with the model on ``--provider`` (default ``torch``:
fp16, CUDA graphs) at each pace, and writes per size ``bench_WxH.json``, ``.md`` and ``.png`` plus
``gpu_bench.md`` (both tables and the goals) into OUT_DIR. A CPU runs the same path at toy size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEDIAPIPE = "mediapipe==0.10.14"
PROTOBUF = "protobuf==4.25.9"  # mediapipe 0.10.14 needs protobuf < 5; the GPU image's may be newer
GOALS = "1080p60 paced: capture->sink p95 <= 8 ms; pipeline >= 0.9 x model-only fps (fast rows)"


class GpuBenchError(RuntimeError):
    """A benchmark that cannot be prepared or run as asked."""


def device_command(wheels: str) -> str:
    """The GPU machine's command: install the carried wheels into /tmp/site, then run the bench."""
    return (f"python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "
            f"{wheels}/*.whl && export PYTHONPATH=/tmp/site && PYTHONUNBUFFERED=1 GLOG_minloglevel=2 "
            f"python3 -m measure.gpu_bench run --out $OUT")


def pack(wheels: Path) -> list[Path]:
    """Download the cp312 manylinux wheels of MediaPipe and protobuf into ``wheels`` (idempotent)."""
    wheels.mkdir(parents=True, exist_ok=True)
    platforms = [a for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
                 for a in ("--platform", p)]
    for requirement in (MEDIAPIPE, PROTOBUF):
        name = requirement.split("==")[0]
        if list(wheels.glob(f"{name}-{requirement.split('==')[1]}-*.whl")):
            continue
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
               "3.12", "--implementation", "cp", *platforms, "-d", str(wheels), requirement]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise GpuBenchError(f"pip could not download {requirement} for CPython 3.12: {res.stderr.strip()[-400:]}")
    return sorted(wheels.glob("*.whl"))


def render_clip(path: Path, width: int, height: int, frames: int, fps: float = 30.0) -> Path:
    """The built-in demo source (realtime.frames.demo_source) at ``width`` x ``height`` written as an mp4."""
    import cv2

    from realtime.frames.demo_source import DemoSource

    demo = DemoSource(width=width, height=height, fps=fps, seconds=frames / fps, realtime=False)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise GpuBenchError(f"OpenCV cannot write {path}")
    try:
        for i in range(frames):
            writer.write(demo.frame_at(i))
    finally:
        writer.release()
    return path


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise GpuBenchError(f"frame size {text!r}: write WIDTHxHEIGHT, e.g. 1920x1080") from None
    if w < 64 or h < 64:
        raise GpuBenchError(f"frame size {text!r} is too small for a face")
    return w, h


def run(out: Path, model: str, sizes: list[tuple[int, int]], paces: list[str], provider: str, frames: int, warmup: int,
        chunk: int, clip_frames: int, threads: int, model_only_runs: int, progress: bool) -> dict:
    """Bench every size at every pace; write the reports into ``out``; return {size: report}."""
    from measure.bench import BenchConfig, BenchOptions, expand_configs, run_bench
    from measure.bench_report import markdown_table
    from measure.report_plots import bench_png
    from realtime.util.atomic_files import write_text

    out.mkdir(parents=True, exist_ok=True)
    device = "cpu"
    try:
        import torch

        if torch.cuda.is_available():
            device = f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    except ImportError:
        pass
    reports, tables = {}, []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in sizes:
            label = f"{width}x{height}"
            clip = render_clip(Path(tmp) / f"demo_{label}.mp4", width, height, clip_frames)
            configs = expand_configs(BenchConfig(model=model, provider=provider, threads=threads), [("pace", paces)])
            options = BenchOptions(frames=frames, warmup=warmup, chunk=chunk, max_load=clip_frames,
                                   model_only_runs=model_only_runs, progress=progress)
            report = run_bench(str(clip), configs, options)
            report["source"] = f"built-in demo source rendered at {label} ({clip_frames} frames, mp4)"
            report["gpu"] = device
            report["command"] = "python -m measure.gpu_bench " + " ".join(sys.argv[1:])
            write_text(out / f"bench_{label}.json", json.dumps(report, indent=2))
            bench_png(report, out / f"bench_{label}.png")
            table = markdown_table(report)
            write_text(out / f"bench_{label}.md", table)
            tables.append(f"### {label}, {provider} on {device}\n\n{table}")
            reports[label] = report
            print(f"\n{label}:\n{table}", flush=True)
    summary = (f"# swapcam gpu-bench\n\nGPU: {device}; model {model}; provider {provider}; {frames} frames per "
               f"configuration after {warmup} warm-up; whole run {time.monotonic() - t0:.0f} s.\n"
               f"Goals: {GOALS}.\n\n" + "\n\n".join(tables) + "\n")
    write_text(out / "gpu_bench.md", summary)
    for label, report in reports.items():
        for r in report["runs"]:
            lat = r["e2e_latency_ms"] if r["e2e_latency_ms"]["p50"] is not None else r["latency_ms"]
            ratio = r["pipeline_over_model_only"]
            print(f"{label} {r['name']}: {r['fps'] or 0:.1f} fps, latency p95 {lat['p95']:.1f} ms, "
                  f"pipeline/model-only {ratio if ratio is None else round(ratio, 2)}, model-only "
                  f"{r['model_only']['fps']:.0f} fps, swap p50 {r['stages_ms']['swap']['p50']:.2f} ms", flush=True)
    return reports


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m measure.gpu_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    pk = sub.add_parser("pack", help="download the wheels the GPU machine lacks; print its command")
    pk.add_argument("--wheels", type=Path, default=Path(".whl"), help="ignored folder for the wheels")
    rn = sub.add_parser("run", help="bench the live pipeline at each size and pace")
    rn.add_argument("--out", type=Path, required=True, help="output folder (bench_WxH.json/.md/.png, gpu_bench.md)")
    rn.add_argument("--model", default="models/demo.onnx", help="the model (default: the shipped demo)")
    rn.add_argument("--sizes", default="1280x720,1920x1080", help="frame sizes, comma-separated")
    rn.add_argument("--pace", default="30,60,fast", help="camera rates (fps or 'fast'), comma-separated")
    rn.add_argument("--provider", default="torch", help="'torch' or an ONNX Runtime provider")
    rn.add_argument("--frames", type=int, default=300, help="measured frames per configuration")
    rn.add_argument("--warmup", type=int, default=30, help="warm-up frames per configuration")
    rn.add_argument("--chunk", type=int, default=50, help="frames per configuration per turn")
    rn.add_argument("--clip-frames", type=int, default=150, help="frames of the rendered clip (served ping-pong)")
    rn.add_argument("--threads", type=int, default=0, help="model threads on a CPU (0: default)")
    rn.add_argument("--model-only-runs", type=int, default=300, help="model-only calls")
    rn.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    from measure.bench import BenchError

    try:
        if args.what == "pack":
            wheels = pack(args.wheels)
            size = sum(w.stat().st_size for w in wheels) / 2**20
            print(f"gpu_bench: {len(wheels)} wheels in {args.wheels}/ ({size:.1f} MiB): {', '.join(w.name for w in wheels)}")
            print(f"\nOn the GPU machine, in the repository root with {args.wheels} beside it, run:\n\n"
                  f"  {device_command(str(args.wheels))}\n\n"
                  f"($OUT: any output folder; through this workplace's device tool: carry [\"{args.wheels}\"]; "
                  "the whole run takes about 2-4 minutes.)", flush=True)
        else:
            if not Path(args.model).is_file():
                raise GpuBenchError(f"model file not found: {args.model}")
            sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
            paces = [s.strip() for s in args.pace.split(",") if s.strip()]
            run(args.out, args.model, sizes, paces, args.provider, args.frames, args.warmup, args.chunk,
                args.clip_frames, args.threads, args.model_only_runs, not args.no_progress)
    except (GpuBenchError, BenchError, ValueError, OSError) as exc:
        print(f"gpu_bench: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GLOG_minloglevel", "2")
    raise SystemExit(main())
