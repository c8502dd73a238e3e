"""`swapcam bench`: measure the live pipeline on a video, compare configurations interleaved.

Example (the README table)::

    swapcam bench video.mp4 --model models/demo.onnx --pace 30,fast --frames 300 --markdown

writes bench.json, bench.png and bench.md into --out and prints a summary (or the markdown table).
With ``--soak MINUTES`` it instead runs the live loop that long (source looped and paced like a camera)
and writes soak.json and soak.png: memory growth and latency p95 drift after warm-up.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from realtime.util.atomic_files import write_text


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from measure.bench import COMPARE_KEYS

    parser.add_argument("source", help="video file, image folder or 'demo' (frames are decoded once, then served like a camera)")
    parser.add_argument("--model", help="ONNX/DFM model, or a photo / folder / video of the target (one-photo swap); "
                                         "may instead come from --compare model=A,B")
    parser.add_argument("--pace", default="30,fast",
                        help="camera rates to emulate, comma-separated fps or 'fast' (as fast as possible); each is a configuration")
    parser.add_argument("--compare", action="append", default=[], metavar="KEY=V1,V2",
                        help="compare values of one setting, interleaved in one run (repeat for more; all combinations run). "
                             "Keys: " + "; ".join(f"{k}: {v}" for k, v in COMPARE_KEYS.items()))
    parser.add_argument("--frames", type=int, default=300, help="measured frames per configuration")
    parser.add_argument("--warmup", type=int, default=30, help="frames per configuration run before measuring")
    parser.add_argument("--chunk", type=int, default=50, help="frames per configuration per turn of the round-robin")
    parser.add_argument("--max-load", type=int, default=150, help="frames decoded from the source (played ping-pong)")
    parser.add_argument("--color", default="rct", help="colour transfer of the merge (none/rct/lct/mkl)")
    parser.add_argument("--smoothing", default="on", help="landmark smoothing on/off")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0 = its default)")
    parser.add_argument("--mark", default="on",
                        help="mark every output frame (label + watermark, stage 'mark') as `swapcam live` does: on/off")
    parser.add_argument("--occlusion", default="on",
                        help="run the occlusion stage (stage 'occlusion') as `swapcam live` does: on/off")
    parser.add_argument("--provider", default=None,
                        help="ONNX Runtime execution provider, or 'torch' (the model run by torch, CUDA where present); "
                             "unset = the best available here")
    parser.add_argument("--crop-scale", type=float, default=None,
                        help="aligned crop side over DeepFaceLab's crop of the model's face type (default: the model's "
                             "metadata, else 1)")
    parser.add_argument("--model-only-runs", type=int, default=100, help="session calls for the model-only throughput")
    parser.add_argument("--no-stamp", action="store_true",
                        help="skip the pixel-stamped end-to-end latency (then latency comes from the pipeline's clocks)")
    parser.add_argument("--trace-memory", action="store_true", help="also record tracemalloc peaks (slows Python a little)")
    parser.add_argument("--out", type=Path, default=Path("bench_out"), help="folder for bench.json, bench.png, bench.md")
    parser.add_argument("--markdown", action="store_true", help="print the markdown table for README's Benchmarks section")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = parser.add_argument_group("soak (long run: memory growth and latency drift)")
    g.add_argument("--soak", type=float, default=None, metavar="MINUTES",
                   help="run the live loop this long on SOURCE (looped, camera-paced, null sink) and report memory "
                        "growth and latency p95 drift after warm-up, instead of comparing configurations")
    g.add_argument("--soak-sample", type=float, default=10.0, metavar="SECONDS", help="sampling interval of the soak")
    g.add_argument("--soak-warmup", type=float, default=None, metavar="MINUTES",
                   help="minutes not counted (default: 2, at most a fifth of the soak)")


def _command_line() -> str:
    """The command as typed, when it came from the `swapcam` entry (else a note that it did not)."""
    argv = sys.argv[1:]
    if argv[:1] != ["bench"]:
        return "swapcam bench (called from Python; see 'runs'[*]['config'] for the settings)"
    return "swapcam " + " ".join(shlex.quote(a) for a in argv)


def _print_summary(report: dict) -> None:
    for r in report["runs"]:
        lat = r["e2e_latency_ms"] if r["e2e_latency_ms"]["p50"] is not None else r["latency_ms"]
        fps = f"{r['fps']:.1f}" if r["fps"] else "n/a"
        ratio = f"{r['pipeline_over_model_only']:.2f}" if r["pipeline_over_model_only"] else "n/a"
        stages = ", ".join(f"{s} {v['p50']:.1f}" for s, v in r["stages_ms"].items() if v["p50"] is not None)
        print(f"[{r['name']}] {fps} fps (model-only {r['model_only']['fps']:.1f}, ratio {ratio}); latency p50/p95/p99 "
              f"{lat['p50']:.1f}/{lat['p95']:.1f}/{lat['p99']:.1f} ms; dropped {r['dropped']['total']}; "
              f"CPU {r['cpu']['process_percent']:.0f}%; {r['provider']}")
        print(f"    stage ms p50: {stages}")
        if r.get("preview_frames_shown") is not None:
            print(f"    preview window: {r['preview_frames_shown']} of {r['frames_out']} measured frames shown")


def _write_report(report: dict, out: Path, stem: str, draw_png) -> None:
    """OUT/STEM.json (the report with the command line that made it) and OUT/STEM.png (``draw_png``)."""
    report["command"] = _command_line()
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / f"{stem}.json", json.dumps(report, indent=2))
    draw_png(report, out / f"{stem}.png")


def _soak(args: argparse.Namespace) -> int:
    from measure.report_plots import soak_png
    from measure.soak import SoakError, SoakOptions, run_soak, soak_summary

    try:
        if not args.model or not Path(args.model).exists():
            raise SoakError(f"give an existing model, photo, folder or video with --model (got {args.model!r})")
        options = SoakOptions(minutes=args.soak, sample_s=args.soak_sample, warmup_minutes=args.soak_warmup,
                              progress=not args.no_progress).check()
        report = run_soak(args.source, args.model, options, threads=args.threads, provider=args.provider,
                          crop_scale=args.crop_scale)
    except SoakError as exc:
        print(f"swapcam bench: {exc}", file=sys.stderr)
        return 2
    _write_report(report, args.out, "soak", soak_png)
    print(soak_summary(report))
    print(f"wrote {args.out / 'soak.json'}, soak.png")
    return 0


def main(args: argparse.Namespace) -> int:
    if args.soak is not None:
        return _soak(args)
    from measure.bench import (
        BenchConfig,
        BenchError,
        BenchOptions,
        _parse_bool,
        expand_configs,
        parse_compare,
        run_bench,
    )
    from measure.bench_report import markdown_table
    from measure.report_plots import bench_png

    try:
        axes = [parse_compare(item) for item in args.compare]
        keys = [k for k, _ in axes]
        if len(set(keys)) != len(keys):
            raise BenchError(f"--compare names a key twice: {keys}")
        if "pace" not in keys:
            axes.insert(0, ("pace", [p.strip() for p in args.pace.split(",") if p.strip()]))
        if "model" not in keys and not args.model:
            raise BenchError("give a model: --model FILE.onnx (or --compare model=A.onnx,B.onnx)")
        for key, values in axes:
            if key == "model":
                missing = [v for v in values if not Path(v).exists()]
                if missing:
                    raise BenchError(f"model file(s) not found: {', '.join(missing)}")
        if args.model and not Path(args.model).exists():
            raise BenchError(f"model file not found: {args.model}")
        base = BenchConfig(model=args.model or "", smoothing=_parse_bool(args.smoothing), color=args.color,
                           threads=args.threads, provider=args.provider, mark=_parse_bool(args.mark),
                           crop_scale=args.crop_scale, occlusion=_parse_bool(args.occlusion))
        configs = expand_configs(base, axes)
        options = BenchOptions(frames=args.frames, warmup=args.warmup, chunk=args.chunk, max_load=args.max_load,
                               stamp=not args.no_stamp, model_only_runs=args.model_only_runs,
                               progress=not args.no_progress, trace_memory=args.trace_memory)
        report = run_bench(args.source, configs, options)
    except (BenchError, ValueError) as exc:
        print(f"swapcam bench: {exc}", file=sys.stderr)
        return 1
    _write_report(report, args.out, "bench", bench_png)
    table = markdown_table(report)
    write_text(args.out / "bench.md", table)
    if args.markdown:
        print(table)
    else:
        _print_summary(report)
    print(f"wrote {args.out / 'bench.json'}, bench.png, bench.md")
    return 0
