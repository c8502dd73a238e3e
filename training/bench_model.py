"""Figures for the model presets, printed: ONNX Runtime latency and training speed/quality.

  python -m training.bench_model latency --presets lite df --resolution 128 --runs 200
  python -m training.bench_model train --src FACESET --dst FACESET --presets lite df --steps 30 --batch-size 4

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
    args = p.parse_args(argv)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (shared with other jobs)", flush=True)
    if args.what == "latency":
        for preset in args.presets:
            for threads in args.threads:
                med, p90, cpu = onnx_latency(preset, args.resolution, threads, args.runs)
                print(f"{preset:>6} {args.resolution} px  threads={threads}  median {med:7.2f} ms  p90 {p90:7.2f} ms  "
                      f"(CPU time median {cpu:7.2f} ms; {args.runs} runs; load {os.getloadavg()[0]:.1f})", flush=True)
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
