"""Train the occlusion model (``swapcam occlusion-train``) and export it to ONNX (``swapcam occlusion-export``).

The whole trainer in one file: facesets in memory, a batch of synthetic occlusions per step
(``training.occlusion_synth``, seeded by the step so a resumed run draws exactly what it would have),
BCE + soft Dice on the occluder mask, Adam with a cosine schedule, a fixed validation set on identities
held out of training, checkpoints written atomically every few minutes, on Ctrl-C and at the end.

Faces of the evaluation users (``EVAL_USERS``) are refused: the occlusion eval must judge faces the model
never saw. Real glasses on training faces would teach "glasses are face" against the synthetic glasses:
``glasses_model`` (a first occlusion model trained on faces without glasses) flags every training face
whose eye band it finds covered; the flagged faces keep their place in training, but the loss ignores their
eye band (wherever no synthetic occluder is pasted over it). The flagged faces are listed in
``RUN/flagged_glasses.json`` with a contact sheet ``RUN/flagged_glasses.png`` to check by eye.
"""

from __future__ import annotations

import datetime
import json
import math
import signal
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from training.occlusion_model import OcclusionExport, OcclusionNet, OcclusionNetConfig
from training.occlusion_synth import (
    TRAIN_SEED_LIMIT,
    TextureBank,
    augment_and_resize,
    build_texture_bank,
    check_seed,
    synthesize,
)

EVAL_USERS = ("grid_s26", "grid_s27", "helmet_selfie")  # the occlusion eval's clips: never trained on
CHECKPOINT = "occlusion_checkpoint.pt"
VAL_SEED_BASE = 800_000  # validation samples' seeds; training steps draw below it
FORMAT_VERSION = "1"


class OcclusionTrainError(ValueError):
    """A training run that cannot start as asked (bad faceset, eval user's faces, mismatched resume)."""


@dataclass
class OcclusionTrainConfig:
    facesets: list[str]
    resolution: int = 64
    width: int = 16
    full: int = 8
    batch_size: int = 32
    steps: int = 6000
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 1
    val_every: int = 250
    val_samples: int = 192
    weights: list[float] | None = None  # share of each faceset in a batch (None: equal)
    glasses_model: str | None = None
    glasses_share: float = 0.2  # share of the eye band the first model must mark to flag a face

    def net_config(self) -> OcclusionNetConfig:
        return OcclusionNetConfig(self.width, self.full, self.resolution).validate()


@dataclass
class _Face:
    image: np.ndarray  # (S, S, 3) uint8 aligned crop
    landmarks: np.ndarray  # (68, 2) aligned pixels
    identity: str
    source: str
    faceset: int  # which of the run's facesets it comes from
    ignore: np.ndarray | None = None  # (S, S) float32, 1 where the loss ignores the face (its real glasses)


def identity_of(source: str, frame: int) -> str:
    """Who a faceset record shows, for the train/validation split: the still's sitter (its file name before
    the first '_'; the folder for a one-person set) or the video (one person)."""
    p = Path(source)
    if p.suffix.lower() in (".mp4", ".avi", ".mov", ".mkv", ".webm"):
        return p.stem
    return f"{p.parent.name}/{p.stem.split('_')[0]}" if p.parent.name != "lisa" else "lisa"


def validation_identities(identities: set[str]) -> set[str]:
    """About one identity (or video block) in ten, chosen by a stable hash, held out for validation; at least
    one, and never all of them."""
    crc = {i: zlib.crc32(i.encode()) for i in identities}
    held = {i for i, c in crc.items() if c % 10 == 0}
    if not held and identities:
        held = {min(crc, key=crc.get)}
    if held == set(identities) and len(held) > 1:
        held.discard(max(held, key=crc.get))
    return held


def load_faces(paths: list[str]) -> tuple[list[_Face], list]:
    """All faces of the facesets (refusing the eval users' faces) and the opened facesets."""
    from training.faceset import Faceset

    faces, facesets, resolution, face_type = [], [], None, None
    for path in paths:
        fs = Faceset.open(path)
        if resolution is None:
            resolution, face_type = fs.resolution, fs.face_type
        elif (fs.resolution, fs.face_type) != (resolution, face_type):
            raise OcclusionTrainError(f"{path}: {fs.face_type} {fs.resolution} px, the first faceset is {face_type} "
                                      f"{resolution} px; extract every faceset alike")
        for rec in fs.records:
            if any(user in Path(rec.source).stem for user in EVAL_USERS):
                raise OcclusionTrainError(f"{path} holds faces of {Path(rec.source).name}, an occlusion-eval user "
                                          f"({', '.join(EVAL_USERS)}): the model must never see them")
            faces.append(_Face(fs.load_image(rec), rec.aligned_points(), identity_of(rec.source, rec.frame), rec.source,
                               len(facesets)))
        facesets.append(fs)
    if not faces:
        raise OcclusionTrainError("the facesets hold no faces")
    return faces, facesets


def eye_band(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(size, size) float32: where glasses sit on a face, from the brows to below the eyes, temple to temple."""
    from realtime.face.alignment import eye_centres

    pts = np.asarray(landmarks, np.float64)
    right, left = eye_centres(pts)
    iod = float(np.linalg.norm(left - right))
    top = pts[17:27, 1].min() - 0.1 * iod
    bottom = max(right[1], left[1]) + 0.45 * iod
    x0, x1 = pts[0, 0] - 0.1 * iod, pts[16, 0] + 0.1 * iod
    band = np.zeros((size, size), np.float32)
    cv2.rectangle(band, (int(x0), int(top)), (int(math.ceil(x1)), int(math.ceil(bottom))), 1.0, -1)
    return band


def flag_glasses(faces: list[_Face], model_path: str, share: float, resolution: int) -> list[int]:
    """Indices of faces whose eye band a first occlusion model marks as covered (real glasses)."""
    from realtime.merging.occlusion import OcclusionModel

    model = OcclusionModel(model_path, threads=1)
    q = model.resolution
    flagged = []
    for i, face in enumerate(faces):
        crop = cv2.resize(face.image, (q, q), interpolation=cv2.INTER_AREA)
        prob = model.get(crop)[0]
        band = cv2.resize(eye_band(face.landmarks, face.image.shape[0]), (q, q), interpolation=cv2.INTER_NEAREST) > 0
        if band.any() and float((prob[band] >= 0.5).mean()) >= share:
            flagged.append(i)
    return flagged


def _sheet(faces: list[_Face], indices: list[int], path: Path, tile: int = 64, columns: int = 20) -> None:
    from realtime.util.atomic_files import write_image

    tiles = [cv2.resize(faces[i].image, (tile, tile), interpolation=cv2.INTER_AREA) for i in indices] or \
        [np.zeros((tile, tile, 3), np.uint8)]
    while len(tiles) % columns:
        tiles.append(np.zeros((tile, tile, 3), np.uint8))
    write_image(path, np.vstack([np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)]))


def make_sample(face: _Face, bank: TextureBank, resolution: int, seed: int) -> tuple[np.ndarray, ...]:
    """One training (or validation) sample of ``face``: (image (R, R, 3) uint8, target (R, R), weight (R, R))."""
    rng = np.random.default_rng(check_seed(seed))
    image, label = synthesize(face.image, face.landmarks, bank, rng)
    ignore = None
    if face.ignore is not None:
        ignore = face.ignore * (label < 0.5)  # a synthetic occluder pasted over real glasses is still learned
    return augment_and_resize(image, label, ignore, resolution, rng)


def _batch(samples: list[tuple[np.ndarray, ...]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    images = torch.from_numpy(np.stack([s[0] for s in samples])).permute(0, 3, 1, 2).float() / 255.0
    target = torch.from_numpy(np.stack([s[1] for s in samples]))[:, None]
    weight = torch.from_numpy(np.stack([s[2] for s in samples]))[:, None]
    return images, target, weight


def loss_fn(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted binary cross-entropy plus soft Dice over the batch (both on pixels of weight > 0)."""
    bce = (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight).sum() / weight.sum().clamp(min=1)
    p = torch.sigmoid(logits) * weight
    t = target * weight
    dice = 1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
    return bce + 0.5 * dice


def validate(net: OcclusionNet, val: list[tuple[np.ndarray, ...]], hulls: np.ndarray) -> dict:
    """Pixel recall, precision and IoU of the occluder mask inside the face (threshold 0.5), and the share of a
    bare face (no occluder pasted) marked as occluder."""
    net.eval()
    with torch.no_grad():
        images, target, weight = _batch(val)
        prob = torch.sigmoid(net(images))[:, 0].numpy()
    net.train()
    tgt = target[:, 0].numpy() >= 0.5
    valid = (weight[:, 0].numpy() > 0) & hulls
    pred = prob >= 0.5
    tp = float((pred & tgt & valid).sum())
    fp = float((pred & ~tgt & valid).sum())
    fn = float((~pred & tgt & valid).sum())
    bare = ~tgt.reshape(len(val), -1).any(1)
    bare_fp = float((pred[bare] & valid[bare]).sum() / max(1, valid[bare].sum())) if bare.any() else None
    return {"recall": tp / max(1.0, tp + fn), "precision": tp / max(1.0, tp + fp), "iou": tp / max(1.0, tp + fp + fn),
            "bare_face_marked": bare_fp}


@dataclass
class OcclusionTrainer:
    """One run folder: ``run(steps=..., minutes=...)`` trains (resuming from its checkpoint) and saves."""

    out: Path
    config: OcclusionTrainConfig
    save_minutes: float = 5.0
    threads: int = 1
    log: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(self.threads)
        cv2.setNumThreads(1)
        self.ckpt_path = self.out / CHECKPOINT
        self.step, self.elapsed = 0, 0.0
        self.history: list[dict] = []
        resumed = None
        if self.ckpt_path.is_file():
            resumed = torch.load(self.ckpt_path, map_location="cpu", weights_only=False)
            old = OcclusionTrainConfig(**resumed["config"])
            for key in ("facesets", "resolution", "width", "full", "seed", "glasses_model", "weights"):
                if getattr(old, key) != getattr(self.config, key):
                    raise OcclusionTrainError(f"{self.out} holds a run with {key}={getattr(old, key)!r}, asked "
                                              f"{getattr(self.config, key)!r}; use another --out to start anew")
        self.faces, facesets = load_faces(self.config.facesets)
        self.net = OcclusionNet(self.config.net_config())
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        bank_path = self.out / "texture_bank.npz"
        if bank_path.is_file():
            self.bank = TextureBank.load(bank_path)
        else:
            train_sets = facesets
            self.bank = build_texture_bank(train_sets, np.random.default_rng(check_seed(self.config.seed)))
            self.bank.save(bank_path)
        self.flagged = self._flag_glasses()
        for i in self.flagged:
            self.faces[i].ignore = eye_band(self.faces[i].landmarks, self.faces[i].image.shape[0])
        held = validation_identities({f.identity for f in self.faces})
        self.train_idx = [i for i, f in enumerate(self.faces) if f.identity not in held]
        self.val_idx = [i for i, f in enumerate(self.faces) if f.identity in held and f.ignore is None]
        if not self.train_idx or not self.val_idx:
            raise OcclusionTrainError("too few identities to hold one in ten out for validation")
        self._groups, self._group_p = self._group_by_faceset(self.train_idx)
        self.val = [make_sample(self.faces[self.val_idx[k % len(self.val_idx)]], self.bank, self.config.resolution,
                                VAL_SEED_BASE + k) for k in range(self.config.val_samples)]
        self.val_hulls = np.stack([self._hull(self.val_idx[k % len(self.val_idx)])
                                   for k in range(self.config.val_samples)])
        if resumed is not None:
            self.net.load_state_dict(resumed["model"])
            self.opt.load_state_dict(resumed["optimizer"])
            self.step, self.elapsed, self.history = resumed["step"], resumed["elapsed_s"], resumed["history"]

    def _hull(self, i: int) -> np.ndarray:
        from realtime.face.alignment import hull_mask

        face = self.faces[i]
        hull = hull_mask(face.landmarks, face.image.shape[0])
        return cv2.resize(hull, (self.config.resolution,) * 2, interpolation=cv2.INTER_NEAREST) > 0.5

    def _group_by_faceset(self, indices: list[int]) -> tuple[list[list[int]], np.ndarray]:
        """Training faces grouped by faceset, and each group's share of a batch (``weights``, default equal): so a
        faceset of 1000 frames of one speaker does not outweigh one of 1000 different sitters."""
        groups: dict[int, list[int]] = {}
        for i in indices:
            groups.setdefault(self.faces[i].faceset, []).append(i)
        weights = self.config.weights or [1.0] * len(self.config.facesets)
        if len(weights) != len(self.config.facesets) or min(weights) < 0:
            raise OcclusionTrainError(f"--weights: one non-negative share per faceset, got {weights}")
        keys = sorted(groups)
        p = np.array([weights[k] for k in keys], np.float64)
        if p.sum() <= 0:
            raise OcclusionTrainError("--weights leave no faceset to train on")
        return [groups[k] for k in keys], p / p.sum()

    def _flag_glasses(self) -> list[int]:
        if not self.config.glasses_model:
            return []
        cache = self.out / "flagged_glasses.json"
        if cache.is_file():
            return [int(i) for i in json.loads(cache.read_text())["indices"]]
        from realtime.util.atomic_files import write_text

        flagged = flag_glasses(self.faces, self.config.glasses_model, self.config.glasses_share, self.config.resolution)
        write_text(cache, json.dumps({"model": self.config.glasses_model, "share": self.config.glasses_share,
                                      "indices": flagged,
                                      "faces": [f"{self.faces[i].source}" for i in flagged]}, indent=1))
        _sheet(self.faces, flagged, self.out / "flagged_glasses.png")
        print(f"occlusion-train: {len(flagged)} of {len(self.faces)} training faces flagged as wearing glasses "
              f"(their eye band is left out of the loss); see {self.out / 'flagged_glasses.png'}", flush=True)
        return flagged

    def _lr(self, step: int, total: int) -> float:
        warm = 100
        if step < warm:
            return self.config.lr * (step + 1) / warm
        t = min(1.0, (step - warm) / max(1, total - warm))
        return self.config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))

    def _train_batch(self, step: int) -> list[tuple[np.ndarray, ...]]:
        rng = np.random.default_rng(check_seed((self.config.seed * 7_919 + step) % VAL_SEED_BASE))
        samples = []
        for k in range(self.config.batch_size):
            group = self._groups[rng.choice(len(self._groups), p=self._group_p)]
            face = self.faces[group[rng.integers(len(group))]]
            samples.append(make_sample(face, self.bank, self.config.resolution, int(rng.integers(0, VAL_SEED_BASE))))
        return samples

    def save(self) -> None:
        from training.checkpoint import save_checkpoint

        save_checkpoint(self.ckpt_path, {"config": asdict(self.config), "step": self.step, "elapsed_s": self.elapsed,
                                         "model": self.net.state_dict(), "optimizer": self.opt.state_dict(),
                                         "history": self.history, "flagged_glasses": len(self.flagged),
                                         "train_faces": len(self.train_idx), "val_faces": len(self.val_idx)})

    def run(self, steps: int | None = None, minutes: float | None = None, progress_every: int = 25) -> dict:
        total = steps or self.config.steps
        stop = {"now": False}

        def _interrupt(*_):
            stop["now"] = True

        previous = signal.signal(signal.SIGINT, _interrupt) if _main_thread() else None
        t_start, t_save, step0 = time.perf_counter(), time.perf_counter(), self.step
        print(f"occlusion-train: {len(self.train_idx)} training faces in {len(self._groups)} groups, "
              f"{len(self.val_idx)} validation faces (identities held out), {self.net.parameter_count()} parameters, "
              f"{self.config.resolution} px; step {self.step} of {total}", flush=True)
        try:
            while self.step < total and not stop["now"]:
                if minutes is not None and time.perf_counter() - t_start > minutes * 60:
                    break
                for g in self.opt.param_groups:
                    g["lr"] = self._lr(self.step, total)
                images, target, weight = _batch(self._train_batch(self.step))
                loss = loss_fn(self.net(images), target, weight)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                self.step += 1
                now = time.perf_counter()
                if self.step % progress_every == 0:
                    rate = (self.step - step0) / max(1e-6, now - t_start)
                    eta = (total - self.step) / max(rate, 1e-9) / 60
                    print(f"occlusion-train: step {self.step}/{total} loss {loss.item():.4f} "
                          f"{rate:.2f} steps/s, eta {eta:.0f} min", flush=True)
                if self.step % self.config.val_every == 0 or self.step == total:
                    metrics = validate(self.net, self.val, self.val_hulls)
                    self.history.append({"step": self.step, **metrics})
                    print(f"occlusion-train: validation at step {self.step}: " +
                          ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if v is not None), flush=True)
                    self.preview()
                if now - t_save > self.save_minutes * 60:
                    self.elapsed += now - t_save
                    t_save = now
                    self.save()
        finally:
            self.elapsed += time.perf_counter() - t_save
            self.save()
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        print(f"occlusion-train: saved step {self.step} to {self.ckpt_path} ({self.elapsed / 60:.1f} min trained)",
              flush=True)
        return {"step": self.step, "history": self.history}

    def preview(self, n: int = 12) -> None:
        """RUN/preview.png: validation samples, their target and the model's mask."""
        from realtime.util.atomic_files import write_image

        self.net.eval()
        with torch.no_grad():
            images, target, _ = _batch(self.val[:n])
            prob = torch.sigmoid(self.net(images))[:, 0].numpy()
        self.net.train()
        rows = []
        for k in range(n):
            grey = lambda a: cv2.cvtColor((a * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)  # noqa: E731
            rows.append(np.hstack([self.val[k][0], grey(target[k, 0].numpy()), grey(prob[k])]))
        write_image(self.out / "preview.png", np.vstack([np.hstack(rows[i:i + 4]) for i in range(0, n, 4)]))


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def describe_training_data(facesets: list[str]) -> str:
    """'N faces: A (n), B (n), ...' from the facesets' sources (videos by name, stills by folder)."""
    from training.faceset import Faceset

    counts: dict[str, int] = {}
    for path in facesets:
        for rec in Faceset.open(path).records:
            src = Path(rec.source)
            key = src.name if src.suffix.lower() in (".mp4", ".avi", ".mov", ".mkv", ".webm") else f"{src.parent.name}/"
            counts[key] = counts.get(key, 0) + 1
    return f"{sum(counts.values())} aligned faces: " + ", ".join(f"{k} ({v})" for k, v in counts.items())


def export_occlusion(run: str | Path, out: str | Path, *, credits: str, threshold: float = 0.5) -> dict:
    """Write the run's model as ONNX (uint8 BGR crops in, probabilities out) with its metadata; returns it."""
    import onnx

    from realtime.util.atomic_files import atomic_path

    run = Path(run)
    path = run / CHECKPOINT
    if not path.is_file():
        raise OcclusionTrainError(f"no occlusion checkpoint in {run} (train one with `swapcam occlusion-train`)")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    config = OcclusionTrainConfig(**ckpt["config"])
    net = OcclusionNet(config.net_config())
    net.load_state_dict(ckpt["model"])
    wrapper = OcclusionExport(net).eval()
    r = config.resolution
    example = torch.full((1, r, r, 3), 128, dtype=torch.uint8)
    import io

    buffer = io.BytesIO()
    torch.onnx.export(wrapper, (example,), buffer, input_names=["face"], output_names=["occlusion"],
                      dynamic_axes={"face": {0: "batch"}, "occlusion": {0: "batch"}}, opset_version=17,
                      do_constant_folding=True, dynamo=False)
    model = onnx.load_from_string(buffer.getvalue())
    faceset_types = {}
    from training.faceset import Faceset

    for fs_path in config.facesets:
        fs = Faceset.open(fs_path)
        faceset_types = {"face_type": fs.face_type, "crop_scale": fs.crop_scale}
    last = ckpt["history"][-1] if ckpt["history"] else {}
    meta = {
        "format_version": FORMAT_VERSION,
        "resolution": str(r),
        "face_type": faceset_types.get("face_type", "full"),
        "crop_scale": str(faceset_types.get("crop_scale", 1.0)),
        "channel_order": "BGR uint8 NHWC in, occluder probability (N, R, R) out",
        "parameters": str(net.parameter_count()),
        "architecture": f"U-Net, width {config.width}, full-resolution branch {config.full}",
        "training_data": describe_training_data(config.facesets),
        "synthetic_occluders": "training/occlusion_synth.py (hands, superellipse glasses with lenses, blobs, sticks, "
                               "slabs, hair strands; textures cut from non-face parts of the training frames; "
                               f"seeds below {TRAIN_SEED_LIMIT})",
        "never_trained_on": ", ".join(EVAL_USERS),
        "glasses_handling": (f"{ckpt.get('flagged_glasses', 0)} faces flagged as wearing real glasses by "
                             f"{Path(config.glasses_model).name}; their eye band left out of the loss")
        if config.glasses_model else "no glasses flagging",
        "credits": credits,
        "steps": str(ckpt["step"]),
        "batch_size": str(config.batch_size),
        "training_minutes": f"{ckpt['elapsed_s'] / 60:.1f}",
        "training_machine": "CPU, 1 thread",
        "validation": json.dumps(last),
        "threshold": str(threshold),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = "swapcam.occlusion." + key, value
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_bytes(model.SerializeToString())
    return meta
