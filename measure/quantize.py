"""INT8 versions of a swap model, made with ONNX Runtime's own quantisation tools, and their CPU cost.

``python -m measure.quantize MODEL.onnx --faces FACESET --out DIR`` writes static-QDQ INT8 copies of
MODEL (weights int8 per channel, activations uint8, calibrated on real aligned faces of FACESET and, for
reference-prior models, the model's own reference warped onto each face's mesh: what the live loop
feeds it), in the variants below, and times every copy against the float model, interleaved, one thread,
CPU time per call. Score a copy's quality with `swapcam eval ... --model DIR/NAME.onnx` (the metadata is
kept, so it is a complete model file).

Variants: ``all`` (every op ORT can quantise), ``conv_gemm`` (convolutions and dense layers only),
``pointwise`` (also leaving the depthwise convolutions in float: ORT's int8 depthwise kernels are slow).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from training.quantize import VARIANTS, calibration_feeds, quantize_model


def quantize(model_path: Path, faceset: Path, out_dir: Path, variant: str, count: int = 64) -> Path:
    """Write ``out_dir/STEM_int8_VARIANT.onnx`` (``training.quantize.quantize_model``)."""
    return quantize_model(model_path, faceset, Path(out_dir) / f"{model_path.stem}_int8_{variant}.onnx", variant, count)


def cpu_ms(paths: dict[str, Path], feed: dict[str, np.ndarray], runs: int) -> dict[str, float]:
    """Median CPU ms per call of each model (ONNX Runtime, 1 thread, no spinning), calls interleaved."""
    from realtime.swap.swapper import create_session

    sessions = {k: create_session(p, ["CPUExecutionProvider"], threads=1) for k, p in paths.items()}
    times: dict[str, list[float]] = {k: [] for k in paths}
    for i in range(runs + 5):
        for k, s in sessions.items():
            t = time.process_time()
            s.run(None, feed)
            if i >= 5:
                times[k].append((time.process_time() - t) * 1000)
    return {k: float(np.median(v)) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m measure.quantize", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--faces", type=Path, required=True, help="faceset of real faces to calibrate on")
    parser.add_argument("--out", type=Path, required=True, help="folder for the INT8 models and quantize.json")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--calibration-faces", type=int, default=64)
    parser.add_argument("--runs", type=int, default=200, help="timed calls per model")
    args = parser.parse_args(argv)
    paths = {"float": args.model}
    for variant in args.variants.split(","):
        paths[f"int8 {variant}"] = quantize(args.model, args.faces, args.out, variant, args.calibration_faces)
    feed = calibration_feeds(args.model, args.faces, 1)[0]
    ms = cpu_ms(paths, feed, args.runs)
    from realtime.util.atomic_files import write_text

    write_text(args.out / "quantize.json", json.dumps({"model": str(args.model), "cpu_ms_per_face": ms,
                                                       "files": {k: str(v) for k, v in paths.items()}}, indent=2))
    for k, v in ms.items():
        print(f"{k:16s} {v:6.2f} ms CPU per face (1 thread, median of {args.runs})  {paths[k].name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
