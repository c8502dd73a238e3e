"""`swapcam train --src FACESET --dst FACESET --out RUN_DIR ...`: train or resume a DF/LIAE model.

Resumes when RUN_DIR holds a checkpoint. Under torchrun (`torchrun --nproc-per-node N -m swapcam
train ...`) the same command trains with DistributedDataParallel.
"""

from __future__ import annotations

import argparse
import sys

from training.model import PRESETS


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--src", required=True, help="faceset of the target identity (the face that will appear on screen)")
    p.add_argument("--dst", required=True, help="faceset of the faces it replaces (the live user, or a varied set)")
    p.add_argument("--out", required=True, help="run folder: checkpoint.pt, preview.png, tensorboard/; resumes if it holds a checkpoint")
    p.add_argument("--preset", default="lite", choices=sorted(PRESETS),
                   help="model preset: lite (real time on CPU), df / liae (DeepFaceLab SAEHD defaults)")
    p.add_argument("--resolution", type=int, default=None, help="model resolution (64-512, multiple of 16); default: the facesets'")
    p.add_argument("--ae-dims", type=int, default=None, help="override the preset's autoencoder (bottleneck) width")
    p.add_argument("--e-dims", type=int, default=None, help="override the preset's encoder width")
    p.add_argument("--d-dims", type=int, default=None, help="override the preset's decoder width")
    p.add_argument("--d-mask-dims", type=int, default=None, help="override the preset's mask decoder width")
    p.add_argument("--batch-size", type=int, default=8, help="faces per side per step (per process under torchrun)")
    p.add_argument("--lr", type=float, default=2e-4, help="AdamW learning rate")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    p.add_argument("--clip-grad", type=float, default=1.0, help="gradient norm clipping")
    p.add_argument("--steps", type=int, default=None, help="stop after this many more steps")
    p.add_argument("--minutes", type=float, default=None, help="stop after this many minutes (checkpoint saved at the end)")
    p.add_argument("--save-minutes", type=float, default=10.0, help="write a checkpoint every this many minutes")
    p.add_argument("--preview-every", type=int, default=500, help="write preview.png every this many steps (0: only at the end)")
    p.add_argument("--log-every", type=int, default=10, help="log losses to the bar and TensorBoard every this many steps")
    p.add_argument("--workers", type=int, default=1, help="data loading worker processes (0: load in the training process)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice, all cores); on a busy shared CPU 1 can be several times faster")
    p.add_argument("--seed", type=int, default=0, help="random seed (weights and augmentation)")
    p.add_argument("--amp", default="auto", choices=["auto", "bf16", "fp16", "off"],
                   help="mixed precision on CUDA (auto: bf16 where supported, else fp16); always off on CPU")
    p.add_argument("--compile", action="store_true", help="torch.compile the model and its losses (CUDA; slow to start)")
    p.add_argument("--augment-on", default="auto", choices=["auto", "device", "loader"],
                   help="where batches are made: device = facesets decoded once onto the GPU and augmented there; "
                        "loader = DataLoader workers on the CPU; auto = device on CUDA, else loader")
    p.add_argument("--no-eyes-mouth-priority", action="store_true", help="do not weight the eyes and mouth more")
    p.add_argument("--gan-power", type=float, default=0.0, help="weight of the patch-GAN term (0: off; DeepFaceLab uses ~0.1 late in training)")
    p.add_argument("--flip", action="store_true", help="random horizontal flips (for faces seen from one side only)")
    p.add_argument("--no-random-warp", action="store_true", help="turn off random warp (DeepFaceLab does so late in training)")
    p.add_argument("--color-transfer", type=float, default=0.5, help="probability of RCT colour transfer of src toward dst per sample")
    p.add_argument("--identity", default=None, help="name of the src identity recorded in the model (default: the src faceset folder name)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")


def main(args: argparse.Namespace) -> int:
    from training.checkpoint import CheckpointError
    from training.faceset import FacesetError
    from training.trainer import ForcedStop, TrainConfig, TrainError, cleanup_distributed, train

    cfg = TrainConfig(
        src=args.src, dst=args.dst, out=args.out, preset=args.preset, resolution=args.resolution,
        ae_dims=args.ae_dims, e_dims=args.e_dims, d_dims=args.d_dims, d_mask_dims=args.d_mask_dims,
        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, clip_grad=args.clip_grad,
        steps=args.steps, minutes=args.minutes, save_minutes=args.save_minutes, preview_every=args.preview_every,
        log_every=args.log_every, workers=args.workers, threads=args.threads, seed=args.seed, amp=args.amp, compile=args.compile,
        augment_on=args.augment_on,
        eyes_mouth_priority=not args.no_eyes_mouth_priority, gan_power=args.gan_power, flip=args.flip,
        random_warp=not args.no_random_warp, color_transfer=args.color_transfer, identity=args.identity,
        progress=not args.no_progress, tensorboard=not args.no_tensorboard,
    )
    try:
        result = train(cfg)
    except (FacesetError, CheckpointError, TrainError, ValueError) as exc:
        print(f"swapcam train: error: {exc}", file=sys.stderr)
        return 2
    except ForcedStop:
        print(f"swapcam train: quit at once; the last checkpoint in {args.out} (if any) is kept as it was",
              file=sys.stderr)
        return 130
    finally:
        cleanup_distributed()
    if result.checkpoint is not None:
        how = "interrupted; saved" if result.interrupted else "saved"
        print(f"step {result.step} ({result.step - result.start_step} this run, {result.samples_per_s:.1f} samples/s): "
              f"{how} {result.checkpoint}")
    return 130 if result.interrupted else 0
