"""`swapcam occlusion-train`: train the occlusion model on facesets with synthetic occluders pasted on them.

Resumable: running the same command again continues from RUN/occlusion_checkpoint.pt (saved every
--save-minutes, on Ctrl-C and at the end). Progress lines with the loss, speed and time left; validation
figures (pixel recall, precision, IoU inside the face, share of a bare face marked) every --val-every
steps, with RUN/preview.png. Export with `swapcam occlusion-export RUN --out models/occlusion.onnx`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from training.occlusion_train import EVAL_USERS, OcclusionTrainConfig

    d = OcclusionTrainConfig(facesets=[])
    parser.add_argument("--facesets", nargs="+", required=True, metavar="FACESET",
                        help=f"aligned facesets, all of one face type and size (never of {', '.join(EVAL_USERS)})")
    parser.add_argument("--out", type=Path, required=True, help="run folder (checkpoint, texture bank, preview)")
    parser.add_argument("--weights", type=float, nargs="+", default=None, metavar="SHARE",
                        help="each faceset's share of a batch, in the order of --facesets (default: equal)")
    parser.add_argument("--steps", type=int, default=d.steps, help="total training steps")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this many minutes (resume later)")
    parser.add_argument("--resolution", type=int, default=d.resolution, help="model input side in pixels (multiple of 16)")
    parser.add_argument("--width", type=int, default=d.width, help="U-Net channels at half resolution")
    parser.add_argument("--full", type=int, default=d.full, help="channels of the full-resolution branch")
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--val-every", type=int, default=d.val_every)
    parser.add_argument("--glasses-model", default=None, metavar="ONNX",
                        help="a first occlusion model: training faces where it finds glasses get their eye band left "
                             "out of the loss (real glasses labelled as face would contradict the synthetic ones)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--save-minutes", type=float, default=5.0, help="checkpoint interval")


def main(args: argparse.Namespace) -> int:
    from training.faceset import FacesetError
    from training.occlusion_train import OcclusionTrainConfig, OcclusionTrainer, OcclusionTrainError

    config = OcclusionTrainConfig(facesets=[str(p) for p in args.facesets], resolution=args.resolution,
                                  width=args.width, full=args.full, batch_size=args.batch_size, steps=args.steps,
                                  lr=args.lr, seed=args.seed, val_every=args.val_every,
                                  glasses_model=args.glasses_model, weights=args.weights)
    try:
        trainer = OcclusionTrainer(args.out, config, save_minutes=args.save_minutes, threads=args.threads)
    except (OcclusionTrainError, FacesetError, ValueError) as exc:
        print(f"swapcam occlusion-train: {exc}", file=sys.stderr)
        return 2
    trainer.run(steps=args.steps, minutes=args.minutes)
    return 0
