"""`swapcam train --src FACES --out RUN --minutes 10`: a model of a new identity, from the pretrained base.

By default a run starts from the pretrained base (``models/base/base.pt``, ``training.base``): every part
of the model comes from it and only what its recipe says trains (the target decoder's reading of the
reference), so ten CPU-minutes on one thread make a usable model and no dst faces are needed. ``--dst`` adds the user's own faces (the
encoder and dst decoder then train on them too, unless --train-parts says otherwise). ``--from-scratch``
trains every part from random weights instead, with the recipe the fixed-budget study chose
(docs/study.md): then --dst is required. ``--src`` and ``--dst`` take a faceset made by `swapcam extract`
(re-cut to the model's face type and size when needed) or videos/photos (extracted first, into RUN).
Resumes when RUN holds a checkpoint. Under torchrun (`torchrun --nproc-per-node N -m swapcam train ...`)
the same command trains with DistributedDataParallel.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.model import PRESETS

# The from-scratch recipe: the fixed-budget study's winner (docs/study.md): reference prior, 192 px, full face.
SCRATCH = dict(preset="prior", resolution=192, face_type="full", batch_size=16, lr=3e-4, train_parts="all",
               warmup_steps=0, cross_identity=0.0)


def configure_parser(p: argparse.ArgumentParser) -> None:
    from training.base import DEFAULT_BASE

    p.description = __doc__.split("\n\n")[0]
    p.epilog = (f"Defaults: from the base {DEFAULT_BASE.relative_to(DEFAULT_BASE.parents[2])} with its recipe: only the "
                "target decoder's reading of the reference (decoder_src.pyramid) trains, lr 3e-4 after a 20-step "
                "warm-up, batch 16, 192 px full face, no dst faces needed: the only fine-tune of those measured that "
                "did not lose identity against the base alone on unseen users (training the whole target decoder, "
                "with a lower lr, fewer steps or other people's pasted skin, did; docs/base.md, all still far from "
                "the 0.40 goal). --from-scratch: preset prior, 192 px full face, batch 16, lr 3e-4, every part "
                "trains: the fixed-budget study's winner (docs/study.md); the round-1 default, preset lite at the "
                "facesets' size, was that study's worst on identity.")
    p.add_argument("--src", nargs="+", metavar="FACES",
                   help="the target identity (the face that will appear on screen): a faceset from `swapcam extract` "
                        "(any face type and size that holds a full face), or videos / photos / folders of them")
    p.add_argument("--dst", nargs="+", default=None, metavar="FACES",
                   help="optional with the base: the user's own faces (faceset or videos/photos), which then also "
                        "train the encoder and the dst decoder; required with --from-scratch (faces it learns to replace)")
    p.add_argument("--out", required=True, help="run folder: checkpoint.pt, preview.png, tensorboard/; resumes if it holds a checkpoint")
    p.add_argument("--base", type=Path, default=DEFAULT_BASE, help="the pretrained base to start from (default: %(default)s)")
    p.add_argument("--from-scratch", action="store_true", help="do not start from the base: every part from random weights")
    p.add_argument("--pool", default=None, metavar="PLAN",
                   help="pretrain a base on many people (a training.identity_pool plan JSON; implies --from-scratch; "
                        "--src/--dst unused): see `make base-model`")
    p.add_argument("--pool-root", default=None, help="folder the plan's faceset paths are relative to (default: the plan's)")
    p.add_argument("--preset", default=None, choices=sorted(PRESETS),
                   help="model preset with --from-scratch (default prior): lite (fastest), prior (reference prior), df / liae "
                        "(DeepFaceLab SAEHD defaults); a base fixes its own")
    p.add_argument("--resolution", type=int, default=None, help="model resolution with --from-scratch (default 192)")
    p.add_argument("--face-type", default=None, help="face type of a from-scratch model (default full)")
    p.add_argument("--ae-dims", type=int, default=None, help="override the preset's autoencoder (bottleneck) width")
    p.add_argument("--e-dims", type=int, default=None, help="override the preset's encoder width")
    p.add_argument("--d-dims", type=int, default=None, help="override the preset's decoder width")
    p.add_argument("--d-mask-dims", type=int, default=None, help="override the preset's mask decoder width")
    p.add_argument("--train-parts", default=None,
                   help="comma-separated parts that train: encoder, inter, decoder_src, decoder_dst, or all "
                        "(default: the base's recipe; with --dst also encoder and decoder_dst; from scratch: all)")
    p.add_argument("--reset-parts", default=None, help="parts of the base re-initialised before training (studies)")
    p.add_argument("--cross-identity", type=float, default=None, metavar="P",
                   help="fraction of the target's samples whose input wears another person's pasted skin (the target "
                        "stays the real face), so the decoder keeps reading identity from the reference (default: "
                        "the base's recipe; from scratch 0)")
    p.add_argument("--skin", nargs="+", default=None, metavar="FACES",
                   help="facesets of other people whose skin is pasted (default: --dst's faces, and models/base/skins "
                        "where make base-skins built it)")
    p.add_argument("--warmup-steps", type=int, default=None, help="steps over which lr rises to --lr (default: the recipe's)")
    p.add_argument("--batch-size", type=int, default=None, help="faces per side per step (default 16)")
    p.add_argument("--lr", type=float, default=None, help="AdamW learning rate (default 3e-4)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    p.add_argument("--clip-grad", type=float, default=1.0, help="gradient norm clipping")
    p.add_argument("--steps", type=int, default=None, help="stop after this many more steps")
    p.add_argument("--minutes", type=float, default=None, help="stop after this many minutes (checkpoint saved at the end)")
    p.add_argument("--cpu-minutes", type=float, default=None,
                   help="stop after the training loop has used this much CPU time (measurements: equal budgets on a busy machine)")
    p.add_argument("--save-minutes", type=float, default=10.0, help="write a checkpoint every this many minutes")
    p.add_argument("--preview-every", type=int, default=100, help="write preview.png every this many steps (0: only at the end)")
    p.add_argument("--log-every", type=int, default=10, help="log losses to the bar and TensorBoard every this many steps")
    p.add_argument("--workers", type=int, default=0, help="data loading worker processes (0: load in the training process)")
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
    p.add_argument("--identity", default=None, help="name of the src identity recorded in the model (default: the src folder name)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")


class UsageError(ValueError):
    """A command line that cannot run as given."""


def _pick(given, *fallbacks):
    """The first of ``given`` and ``fallbacks`` that is not None."""
    for value in (given, *fallbacks):
        if value is not None:
            return value
    return None


def plan_run(args: argparse.Namespace) -> tuple[dict, list[str]]:
    """The TrainConfig settings this command line means, and lines telling the user what was chosen (which
    base, or why none; faces adapted). Raises UsageError / BaseError / FacesetError."""
    from training.adapt import check_faces, prepare_faces
    from training.base import load_base
    from training.checkpoint import CHECKPOINT_NAME, load_checkpoint

    out = Path(args.out)
    notes: list[str] = []
    resumed = load_checkpoint(out / CHECKPOINT_NAME).run_config if (out / CHECKPOINT_NAME).exists() else None
    if args.pool:
        scratch = True
    elif resumed is not None:
        scratch = not resumed.get("base")
    else:
        scratch = args.from_scratch
    model_flags = {k: getattr(args, k) for k in ("preset", "resolution", "ae_dims", "e_dims", "d_dims", "d_mask_dims")
                   if getattr(args, k) is not None}
    recipe = dict(SCRATCH)
    base_path = None
    if resumed is not None:  # a resumed run keeps its own settings unless the command line changes them
        recipe.update({k: resumed[k] for k in ("preset", "resolution", "batch_size", "lr", "train_parts", "warmup_steps",
                                               "cross_identity", "skin") if resumed.get(k) is not None})
        recipe["face_type"] = resumed.get("face_type", recipe["face_type"])
        if resumed.get("base"):
            notes.append(f"resuming {out} (started from base {resumed['base'].get('name')!r}, "
                         f"sha256 {str(resumed['base'].get('sha256'))[:12]})")
    elif not scratch:
        if model_flags:
            raise UsageError(f"{', '.join('--' + k.replace('_', '-') for k in model_flags)}: the base fixes the model; "
                             "add --from-scratch to choose your own")
        base = load_base(args.base)
        base_path = str(base.path)
        recipe.update(preset=base.model_config.preset, resolution=base.model_config.resolution, face_type=base.face_type,
                      **base.recipe.to_dict())
        if args.dst:  # the user's own faces: the shared side learns them too
            recipe["train_parts"] = "all"
        notes.append(f"starting from the pretrained {base.describe()}; add --from-scratch to train without it")
    if not args.pool:
        if not args.src:
            raise UsageError("--src is required: the faceset, videos or photos of the identity to show")
        if scratch and not args.dst:
            raise UsageError("--from-scratch needs --dst: the faces it learns to replace (the base brings its own)")
    face_type = args.face_type or recipe["face_type"]
    size = args.resolution or recipe["resolution"]
    settings = dict(recipe)
    settings.update({k: v for k, v in dict(preset=args.preset, resolution=args.resolution, batch_size=args.batch_size,
                                            lr=args.lr, train_parts=args.train_parts, warmup_steps=args.warmup_steps,
                                            cross_identity=args.cross_identity).items() if v is not None})
    settings.pop("face_type")
    src = dst = None
    if not args.pool:
        check_faces(list(args.src), "src")
        if args.dst:
            check_faces(list(args.dst), "dst")
        src, note = prepare_faces(list(args.src), out, "src", face_type, size, progress=not args.no_progress)
        notes.append(note)
        if args.dst:
            dst, note = prepare_faces(list(args.dst), out, "dst", face_type, size, progress=not args.no_progress)
            notes.append(note)
    settings.update(src=str(src) if src else "", dst=str(dst) if dst else None, base=None if scratch else base_path,
                    reset_parts=_pick(args.reset_parts, settings.get("reset_parts"), ""))
    if settings.get("cross_identity", 0) > 0:
        settings["skin"] = _skins(args, settings.get("skin"), dst)
        notes.append(f"{settings['cross_identity']:.0%} of the target's samples wear another person's skin "
                     f"({', '.join(Path(s).name for s in settings['skin'])}), so the model keeps reading identity "
                     "from the reference")
    return settings, notes


def _skins(args: argparse.Namespace, resumed: list[str] | None, dst: Path | None) -> list[str]:
    """The facesets whose skin is pasted: --skin, else a resumed run's, else models/base/skins (where built) and --dst."""
    from training.skin_pool import DEFAULT_SKINS

    if args.skin:
        return [str(s) for s in args.skin]
    if resumed:
        return list(resumed)
    skins = [str(DEFAULT_SKINS)] if DEFAULT_SKINS.is_dir() else []
    if dst:
        skins.append(str(dst))
    if not skins:
        raise UsageError(f"pasted skin needs donor faces of other people: give --skin FACES or --dst FACES "
                         f"(or build {DEFAULT_SKINS} with make base-skins), or train with --cross-identity 0")
    return skins


def main(args: argparse.Namespace) -> int:
    from training.base import BaseError
    from training.checkpoint import CheckpointError
    from training.faceset import FacesetError
    from training.trainer import ForcedStop, TrainConfig, TrainError, cleanup_distributed, train

    try:
        settings, notes = plan_run(args)
        for note in notes:
            print(f"swapcam train: {note}", flush=True)
        cfg = TrainConfig(
            out=args.out, **settings, ae_dims=args.ae_dims, e_dims=args.e_dims, d_dims=args.d_dims,
            d_mask_dims=args.d_mask_dims, weight_decay=args.weight_decay, clip_grad=args.clip_grad,
            steps=args.steps, minutes=args.minutes, cpu_minutes=args.cpu_minutes, save_minutes=args.save_minutes,
            preview_every=args.preview_every, log_every=args.log_every, workers=args.workers, threads=args.threads,
            seed=args.seed, amp=args.amp, compile=args.compile, augment_on=args.augment_on,
            eyes_mouth_priority=not args.no_eyes_mouth_priority, gan_power=args.gan_power, flip=args.flip,
            random_warp=not args.no_random_warp, color_transfer=args.color_transfer, identity=args.identity,
            progress=not args.no_progress, tensorboard=not args.no_tensorboard, pool=args.pool, pool_root=args.pool_root,
        )
        result = train(cfg)
    except (UsageError, BaseError, FacesetError, CheckpointError, TrainError, ValueError) as exc:
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
        print(f"step {result.step} ({result.step - result.start_step} this run, {result.samples_per_s:.1f} samples/s, "
              f"{result.cpu_seconds / 60:.1f} CPU-min): {how} {result.checkpoint}; preview {Path(args.out) / 'preview.png'}")
    return 130 if result.interrupted else 0
