"""Figures for the model presets, printed: ONNX Runtime latency and training speed/quality.

  python -m training.bench_model latency --presets lite df --resolution 128 --runs 200
  python -m training.bench_model train --src FACESET --dst FACESET --presets lite df --steps 30 --batch-size 4

  python -m training.bench_model step --src FACESET --dst FACESET --preset df --resolution 256 --batch-size 64

``step`` times the training step as the trainer runs it (same batches, autocast, channels-last,
fused AdamW on CUDA, ``--compile``): samples/s over ``--steps`` steps with no synchronisation inside,
then the step split into data, forward (model and losses), backward and optimiser (median ms, each
phase synchronised), and MFU: the model's FLOPs per step (counted, ``training.perf``) x steps/s over
the bf16 peak of the GPU's datasheet and over a measured matrix-product rate (on a CPU, only the
latter, in float32). One sample is one src face and one dst face (the trainer's batch unit).

``latency`` exports each preset (random weights: the time does not depend on their values) and times
one face through onnxruntime's CPU provider with 1 and 2 intra-op threads (median and p90 over
``--runs`` after warm-up). ``train`` trains each preset from the same seed on the same facesets for
the same steps with the real trainer (data loading included) and prints samples/s and the masked
MSE / DSSIM of src and dst rebuilt from unaugmented faces before and after.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def onnx_latency(preset: str, resolution: int, threads: int, runs: int) -> tuple[float, float, float]:
    """(median wall ms, p90 wall ms, median process-CPU ms) of one face through the exported swap
    graph of ``preset``. With 1 thread the CPU time is what the run costs without other jobs
    competing for the core (the wall time includes waiting for it on a shared machine)."""
    import onnxruntime as ort
    import torch

    from training.export import export_onnx_graph
    from training.model import FaceSwapModel, make_config

    torch.manual_seed(0)
    model = FaceSwapModel(make_config(preset, resolution)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{preset}.onnx"
        export_onnx_graph(model, path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    face = np.random.default_rng(0).random((1, resolution, resolution, 3), dtype=np.float32)
    for _ in range(10):
        sess.run(None, {"in_face:0": face})
    times, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        sess.run(None, {"in_face:0": face})
        times.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
    return float(np.median(times)), float(np.percentile(times, 90)), float(np.median(cpu))


def train_figures(preset: str, src: str, dst: str, steps: int, batch: int, lr: float, threads: int) -> dict:
    """Train ``preset`` from seed 0 and return samples/s and reconstruction figures before/after."""
    import torch

    from training.dataset import AugmentConfig, PairDataset, open_facesets
    from training.model import FaceSwapModel
    from training.trainer import TrainConfig, evaluate_reconstruction, train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(src=src, dst=dst, out=tmp, preset=preset, batch_size=batch, lr=lr, steps=steps, workers=0,
                          threads=threads, preview_every=0, progress=False, tensorboard=False)
        s, d = open_facesets(src, dst)
        res = cfg.model_config(s.resolution).resolution
        fixed = PairDataset(s, d, res, AugmentConfig.off()).fixed_batch(8)
        torch.manual_seed(cfg.seed)
        before = evaluate_reconstruction(FaceSwapModel(cfg.model_config(s.resolution)), fixed)
        result = train(cfg)
        after = evaluate_reconstruction(result.model, fixed)
    return {"samples_per_s": result.samples_per_s, "seconds": result.seconds, "before": before, "after": after}


GOALS = {("df", 256): ("mfu_datasheet", 0.40), ("lite", 128): ("samples_per_s", 20000.0)}  # issue 11, on an H200


def step_figures(src: str, dst: str, preset: str, resolution: int | None, batch: int, steps: int, warmup: int,
                 split_steps: int = 10, compile: bool = False, amp: str = "auto", augment_on: str = "auto",
                 threads: int | None = None, peak_tflops: float | None = None) -> dict:
    """Throughput, step-time split and MFU of one preset's training step (see the module docstring)."""
    import statistics

    import torch

    from training.losses import LossWeights
    from training.model import FaceSwapModel
    from training.perf import datasheet_peak_tflops, measured_matmul_tflops, mfu, training_step_flops
    from training.trainer import (
        PairData,
        TrainConfig,
        autocast,
        build_optimizer,
        compute_losses,
        make_batches,
        setup_runtime,
        uses_device_batches,
    )

    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        cfg = TrainConfig(src=src, dst=dst, out="", preset=preset, resolution=resolution, batch_size=batch,
                          amp=amp, compile=compile, augment_on=augment_on, workers=0, progress=False)
        data = PairData(src, dst)
        model_cfg = cfg.model_config(data.resolution)
        data.prepare(model_cfg, Path(tempfile.mkdtemp(prefix="bench_model_")), False)  # a prior model's reference
        rt = setup_runtime(amp)
        torch.manual_seed(0)
        model = FaceSwapModel(model_cfg).to(rt.device).to(memory_format=torch.channels_last).train()
        opt = build_optimizer(model.parameters(), cfg, rt)
        scaler = torch.amp.GradScaler("cuda", enabled=rt.amp_dtype == torch.float16)
        weights = LossWeights()
        batches = make_batches(cfg, rt, data, model_cfg.resolution, 0)
        sample_batch = next(batches)
        flops = training_step_flops(model, {k: v[:2] for k, v in sample_batch.items()}, weights, batch)
        forward = lambda b: compute_losses(model, b, weights)  # noqa: E731
        if compile:
            forward = torch.compile(forward)
        cuda = rt.device.type == "cuda"

        def sync() -> None:
            if cuda:
                torch.cuda.synchronize(rt.device)

        def one_step(b, marks: list | None = None) -> None:
            with autocast(rt):
                loss = forward(b)["total"]
            if marks is not None:
                sync()
                marks.append(time.perf_counter())
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if marks is not None:
                sync()
                marks.append(time.perf_counter())
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            scaler.step(opt)
            scaler.update()

        t = time.perf_counter()
        for _ in range(warmup):
            one_step(next(batches))
        sync()
        warmup_s = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(steps):
            one_step(next(batches))
        sync()
        seconds = time.perf_counter() - t
        split = {"data": [], "forward": [], "backward": [], "optimizer": []}
        for _ in range(split_steps):
            sync()
            marks = [time.perf_counter()]
            b = next(batches)
            sync()
            marks.append(time.perf_counter())
            one_step(b, marks)
            sync()
            marks.append(time.perf_counter())
            for name, a, z in zip(split, marks, marks[1:]):
                split[name].append((z - a) * 1e3)
        datasheet, device_name = datasheet_peak_tflops(rt.device)
        datasheet = peak_tflops or datasheet
        measured = measured_matmul_tflops(rt.device)
        steps_per_s = steps / seconds
        figures = {
            "preset": preset, "resolution": model_cfg.resolution, "batch_size": batch, "device": device_name,
            "torch": torch.__version__, "amp": str(rt.amp_dtype).replace("torch.", "") if rt.amp_dtype else "off",
            "compile": compile, "batches_made_on": "device" if uses_device_batches(cfg, rt) else "loader",
            "threads": torch.get_num_threads() if not cuda else None,
            "steps": steps, "warmup_steps": warmup, "warmup_s": warmup_s, "seconds": seconds,
            "samples_per_s": steps_per_s * batch, "step_ms": seconds / steps * 1e3,
            "split_ms_median": {k: statistics.median(v) for k, v in split.items()} if split_steps else {},
            "model_gflops_per_sample": flops["model"] / batch / 1e9, "loss_gflops_per_sample": flops["losses"] / batch / 1e9,
            "peak_tflops_datasheet_bf16": datasheet, "peak_tflops_measured_matmul": measured,
            "mfu_datasheet": mfu(flops["model"], steps_per_s, datasheet),
            "mfu_measured_matmul": mfu(flops["model"], steps_per_s, measured),
            "peak_memory_gib": torch.cuda.max_memory_allocated(rt.device) / 2**30 if cuda else None,
        }
        goal = GOALS.get((preset, model_cfg.resolution))
        if goal and cuda:
            key, target = goal
            figures["goal"] = {"figure": key, "target": target, "met": (figures[key] or 0) >= target}
        return figures
    finally:
        torch.set_num_threads(previous_threads)


def format_step_figures(f: dict) -> str:
    """One readable block of ``step_figures``' result."""
    pct = lambda v: "n/a" if v is None else f"{v * 100:.1f}%"  # noqa: E731
    split = ", ".join(f"{k} {v:.2f}" for k, v in f["split_ms_median"].items())
    lines = [
        (f"{f['preset']} {f['resolution']} px, batch {f['batch_size']} on {f['device']} (torch {f['torch']}, amp "
         f"{f['amp']}, compile {f['compile']}, batches made on the {f['batches_made_on']}):"),
        (f"  {f['samples_per_s']:.1f} samples/s ({f['step_ms']:.2f} ms/step over {f['steps']} steps after "
         f"{f['warmup_steps']} warm-up in {f['warmup_s']:.1f} s)"),
        f"  step split, median ms: {split}",
        (f"  model {f['model_gflops_per_sample']:.3f} GFLOP/sample/step (+ losses {f['loss_gflops_per_sample']:.3f}); "
         f"MFU {pct(f['mfu_datasheet'])} of the datasheet bf16 peak "
         f"({f['peak_tflops_datasheet_bf16'] or 'unknown'} TFLOP/s), {pct(f['mfu_measured_matmul'])} of a measured "
         f"matrix product ({f['peak_tflops_measured_matmul']:.3g} TFLOP/s)"),
    ]
    if f.get("goal"):
        g = f["goal"]
        lines.append(f"  goal {g['figure']} >= {g['target']:g}: {'met' if g['met'] else 'NOT met'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.bench_model", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    lat = sub.add_parser("latency", help="ONNX Runtime ms per face per preset")
    lat.add_argument("--presets", nargs="+", default=["lite", "df"], help="presets to time")
    lat.add_argument("--resolution", type=int, default=128, help="face resolution")
    lat.add_argument("--runs", type=int, default=200, help="timed runs per setting")
    lat.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op thread counts")
    tr = sub.add_parser("train", help="training samples/s and quality per preset")
    tr.add_argument("--src", required=True, help="src faceset")
    tr.add_argument("--dst", required=True, help="dst faceset")
    tr.add_argument("--presets", nargs="+", default=["lite", "df"], help="presets to train")
    tr.add_argument("--steps", type=int, default=30, help="steps per preset")
    tr.add_argument("--batch-size", type=int, default=4, help="faces per side per step")
    tr.add_argument("--lr", type=float, default=5e-4, help="learning rate (same for every preset)")
    tr.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    st = sub.add_parser("step", help="training step: samples/s, data/forward/backward/optimiser split, MFU")
    st.add_argument("--src", required=True, help="src faceset")
    st.add_argument("--dst", required=True, help="dst faceset")
    st.add_argument("--preset", default="lite", help="model preset")
    st.add_argument("--resolution", type=int, default=None, help="model resolution (default: the facesets')")
    st.add_argument("--batch-size", type=int, default=8, help="faces per side per step")
    st.add_argument("--steps", type=int, default=20, help="timed steps (no synchronisation inside)")
    st.add_argument("--warmup", type=int, default=3, help="steps before timing (compilation happens here)")
    st.add_argument("--split-steps", type=int, default=5, help="steps timed phase by phase")
    st.add_argument("--compile", action="store_true", help="torch.compile the model and its losses")
    st.add_argument("--amp", default="auto", choices=["auto", "bf16", "fp16", "off"], help="autocast on CUDA")
    st.add_argument("--augment-on", default="auto", choices=["auto", "device", "loader"], help="where batches are made")
    st.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    st.add_argument("--peak-tflops", type=float, default=None, help="peak to compute MFU against (default: datasheet)")
    st.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (shared with other jobs)", flush=True)
    if args.what == "latency":
        for preset in args.presets:
            for threads in args.threads:
                med, p90, cpu = onnx_latency(preset, args.resolution, threads, args.runs)
                print(f"{preset:>6} {args.resolution} px  threads={threads}  median {med:7.2f} ms  p90 {p90:7.2f} ms  "
                      f"(CPU time median {cpu:7.2f} ms; {args.runs} runs; load {os.getloadavg()[0]:.1f})", flush=True)
    elif args.what == "step":
        f = step_figures(args.src, args.dst, args.preset, args.resolution, args.batch_size, args.steps, args.warmup,
                         args.split_steps, args.compile, args.amp, args.augment_on, args.threads, args.peak_tflops)
        f["load_average"] = os.getloadavg()[0]
        print(format_step_figures(f), flush=True)
        if args.json:
            import json

            from realtime.util.atomic_files import write_text

            write_text(args.json, json.dumps(f, indent=2))
    else:
        for preset in args.presets:
            f = train_figures(preset, args.src, args.dst, args.steps, args.batch_size, args.lr, args.threads)
            b, a = f["before"], f["after"]
            print(f"{preset:>6}: {f['samples_per_s']:.2f} samples/s ({args.steps} steps x {args.batch_size}, {f['seconds']:.0f} s); "
                  f"src masked MSE {b['src_mse']:.4f} -> {a['src_mse']:.4f}, DSSIM {b['src_dssim']:.4f} -> {a['src_dssim']:.4f}; "
                  f"dst MSE {b['dst_mse']:.4f} -> {a['dst_mse']:.4f}, DSSIM {b['dst_dssim']:.4f} -> {a['dst_dssim']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
