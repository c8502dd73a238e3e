"""`swapcam occlusion-export RUN --out models/occlusion.onnx --credits "..."`: the occlusion model as ONNX.

uint8 BGR crops in, occluder probability out; its metadata records the face type and resolution the live
loop reads, and what it was trained on (faces, synthetic occluders, glasses handling, credits, steps, time,
validation figures).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder of `swapcam occlusion-train`")
    parser.add_argument("--out", type=Path, required=True, help="the ONNX file to write")
    parser.add_argument("--credits", required=True,
                        help="credits and licences of the training faces (recorded in the model's metadata)")


def main(args: argparse.Namespace) -> int:
    from training.occlusion_train import OcclusionTrainError, export_occlusion

    try:
        meta = export_occlusion(args.run, args.out, credits=args.credits)
    except (OcclusionTrainError, ValueError) as exc:
        print(f"swapcam occlusion-export: {exc}", file=sys.stderr)
        return 2
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size / 1024:.0f} KiB, {meta['parameters']} parameters, {meta['resolution']} px "
          f"{meta['face_type']}; {meta['steps']} steps, {meta['training_minutes']} min; trained on {meta['training_data']})")
    return 0
