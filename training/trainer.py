"""The training loop: one plain function a reader can hold in their head (after nanoGPT's train.py).

``train(cfg)`` opens the facesets, builds or resumes the model, and runs AdamW steps until
``cfg.steps`` or ``cfg.minutes`` is reached, saving a checkpoint atomically every
``cfg.save_minutes``, on Ctrl-C and at the end. On CUDA it uses bf16/fp16 autocast, channels-last,
fused AdamW and batches made on the GPU (``training.gpu_augment``: facesets decoded once, augmented
in torch), ``torch.compile`` when asked, and never waits for the GPU within a step: the loss is
checked for NaN/inf on the device and read every ``log_every`` steps (and before every save). On
CPU the batches come from DataLoader workers (``training.dataset``) unless ``augment_on='device'``.
Under ``torchrun`` it wraps the model in DistributedDataParallel (NCCL on CUDA, gloo on CPU): the
same command from one to many GPUs; rank 0 alone writes checkpoints, previews and TensorBoard.

Batches are dicts of per-sample tensors (``{src,dst}_{input,target,mask,em}``) made in one place,
``make_batches``; a further per-sample input flows through by adding its key there and reading it
in ``compute_losses``.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from realtime.util.atomic_files import write_image
from training.checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from training.dataset import AugmentConfig, PairDataset, StepSampler, faceset_summary, open_facesets
from training.losses import LossWeights, PatchDiscriminator, dssim, gan_losses, reconstruction_loss
from training.base import PARTS, freeze_parts, load_base, parse_parts, reset_parts
from training.faceset import Faceset, FacesetError
from training.model import FaceSwapModel, ModelConfig, make_config
from training.stop_request import STOP_SIGNALS, ForcedStop, StopRequest


@dataclass
class TrainConfig:
    """Every setting of a run (plain values; stored in the checkpoint)."""

    src: str
    dst: str
    out: str
    preset: str = "lite"
    resolution: int | None = None  # None: the facesets' resolution
    ae_dims: int | None = None
    e_dims: int | None = None
    d_dims: int | None = None
    d_mask_dims: int | None = None
    batch_size: int = 8
    lr: float = 2e-4
    weight_decay: float = 0.0
    clip_grad: float = 1.0
    steps: int | None = None
    minutes: float | None = None
    save_minutes: float = 10.0
    preview_every: int = 500
    log_every: int = 10
    workers: int = 1
    threads: int | None = None  # torch CPU threads for this run (None: torch's default); restored after
    seed: int = 0
    amp: str = "auto"  # auto | bf16 | fp16 | off (CUDA only)
    compile: bool = False
    augment_on: str = "auto"  # auto (device on CUDA, loader on CPU) | device | loader
    eyes_mouth_priority: bool = True
    gan_power: float = 0.0
    flip: bool = False
    random_warp: bool = True
    color_transfer: float = 0.5
    identity: str | None = None
    progress: bool = True
    tensorboard: bool = True
    cpu_minutes: float | None = None  # stop when this process has used this much CPU time in the loop
    base: str | None = None  # a pretrained base (training.base) a new run starts from; None: from scratch
    train_parts: str = "all"  # comma-separated model parts that train (training.base.PARTS), or all
    reset_parts: str = ""  # parts re-initialised after the base is loaded (studies)
    warmup_steps: int = 0  # lr rises linearly over the run's first steps (a fine-tune's fresh AdamW)
    pool: str | None = None  # a pretraining plan (training.identity_pool.PoolPlan JSON): many people; src/dst unused
    pool_root: str | None = None  # the folder the plan's faceset paths are relative to (default: the plan's)
    skin: list[str] | None = None  # facesets of other people whose skin is pasted on src inputs (training.skin_pool)
    cross_identity: float = 0.0  # the fraction of src samples that wear it (prior models; needs skin)

    def model_config(self, faceset_resolution: int) -> ModelConfig:
        return make_config(self.preset, self.resolution or faceset_resolution, ae_dims=self.ae_dims,
                           e_dims=self.e_dims, d_dims=self.d_dims, d_mask_dims=self.d_mask_dims)

    def augment(self) -> AugmentConfig:
        return AugmentConfig(random_warp=self.random_warp, flip=self.flip, color_transfer=self.color_transfer)


@dataclass
class TrainResult:
    step: int
    start_step: int
    interrupted: bool
    seconds: float
    samples_per_s: float  # pairs (one src + one dst face) per second, all ranks
    last_losses: dict = field(default_factory=dict)
    history: list = field(default_factory=list)  # {"step", "seconds", losses...} every log_every steps
    checkpoint: Path | None = None
    model: FaceSwapModel | None = None  # the trained model (unwrapped), this process's copy
    cpu_seconds: float = 0.0  # this process's CPU time in the training loop


class TrainError(RuntimeError):
    """A run that cannot start as asked (mismatched checkpoint, no stopping rule, ...)."""


@dataclass
class Runtime:
    """Where and how this process computes."""

    device: torch.device
    rank: int = 0
    world: int = 1
    amp_dtype: torch.dtype | None = None

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_runtime(amp: str) -> Runtime:
    """Device and process group from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    cuda = torch.cuda.is_available()
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    amp_dtype = None
    if cuda and amp != "off":
        if amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported()):
            amp_dtype = torch.float16
        else:
            amp_dtype = torch.bfloat16
    return Runtime(device, rank, world, amp_dtype)


def _leave_signals_to_trainer(_worker_id: int) -> None:
    """DataLoader workers ignore Ctrl-C and SIGTERM (a terminal, `pkill -f`, systemd or `docker stop`
    signal the whole process group): the training process saves and then stops them itself."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def autocast(rt: Runtime):
    """bf16/fp16 autocast on CUDA; nothing on CPU."""
    if rt.amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=rt.amp_dtype)


def to_device(batch: dict[str, torch.Tensor], rt: Runtime) -> dict[str, torch.Tensor]:
    # channels_last on CPU too: oneDNN's depthwise-conv backward is ~1.8x faster than the default
    # NCHW path for the lite preset (measured with threads=1, batch 16, 128 px on the 2-core machine)
    return {
        k: v.to(rt.device, non_blocking=True).contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v.to(rt.device)
        for k, v in batch.items()
    }


def uses_device_batches(cfg: TrainConfig, rt: Runtime) -> bool:
    """Whether batches are made on the training device (gpu_augment) rather than by DataLoader workers."""
    if cfg.augment_on not in ("auto", "device", "loader"):
        raise TrainError(f"augment_on must be auto, device or loader, got {cfg.augment_on!r}")
    return cfg.augment_on == "device" or (cfg.augment_on == "auto" and rt.device.type == "cuda")


class PairData:
    """A run's data: the target's src faceset and a dst faceset (``dst`` None: src only, for a fine-tune whose
    dst side stays as the base left it). Prior models also get the target's reference (chosen once, kept in
    the run folder) and the src meshes. ``training.identity_pool.PoolData`` is the same for many people."""

    def __init__(self, src: str, dst: str | None, skin: list[str] | None = None, cross_identity: float = 0.0) -> None:
        self.skin_paths, self.cross_identity, self.skins = list(skin or []), cross_identity, None
        if dst:
            self.src_fs, self.dst_fs = open_facesets(src, dst)
        else:
            self.src_fs, self.dst_fs = Faceset.open(src), None
            if len(self.src_fs) == 0:
                raise FacesetError(f"src faceset {src} holds no faces; extract some with `swapcam extract ... --out {src}`")
        self.reference = self.meshes = None

    resolution = property(lambda self: self.src_fs.resolution)
    face_type = property(lambda self: self.src_fs.face_type)
    crop_scale = property(lambda self: self.src_fs.crop_scale)
    default_identity = property(lambda self: self.src_fs.path.name)

    def prepare(self, model_cfg: ModelConfig, out: Path, progress: bool) -> None:
        if model_cfg.prior:
            self.reference, self.meshes = _prior_inputs(self.src_fs, out, progress)
        if self.cross_identity > 0 and self.skin_paths:
            if not model_cfg.prior:
                raise FacesetError("pasted skin (--cross-identity) needs a reference-prior model")
            from training.skin_pool import SkinDonors

            self.skins = SkinDonors.open(self.skin_paths, model_cfg.resolution, self.face_type, self.crop_scale, progress)

    def dataset(self, resolution: int, aug: AugmentConfig, seed: int) -> PairDataset:
        return PairDataset(self.src_fs, self.dst_fs, resolution, aug, seed, self.reference, self.meshes,
                           self.skins, self.cross_identity)

    def preview_batch(self, resolution: int, seed: int) -> dict[str, torch.Tensor]:
        return self.dataset(resolution, AugmentConfig.off(), seed).fixed_batch(4)

    def summaries(self) -> list[dict]:
        return [faceset_summary("src", self.src_fs)] + ([faceset_summary("dst", self.dst_fs)] if self.dst_fs else [])


def open_data(cfg: TrainConfig):
    """The run's data: a pretraining pool (``cfg.pool``) or a src/dst pair."""
    if cfg.pool:
        from training.identity_pool import PoolData, PoolPlan

        return PoolData.open(PoolPlan.load(cfg.pool, cfg.pool_root))
    return PairData(cfg.src, cfg.dst, cfg.skin, cfg.cross_identity)


def make_batches(cfg: TrainConfig, rt: Runtime, data, resolution: int, start_step: int):
    """The batches of steps ``start_step, ...`` on the training device, as an iterator of dicts;
    each step's batch depends only on (seed, step, rank), whichever way it is made. Prior models'
    batches carry src_prior (the reference warped onto each src face), made on the CPU in the loader."""
    on_device = uses_device_batches(cfg, rt)
    if on_device and (data.reference is not None or not isinstance(data, PairData) or data.dst_fs is None):
        if cfg.augment_on == "device":
            raise TrainError("prior models, pretraining pools and src-only runs make their batches in DataLoader "
                             "workers: use --augment-on loader or auto")
        on_device = False
    if on_device:
        from training.gpu_augment import DeviceBatches, DeviceFaceset

        src = DeviceFaceset.load(data.src_fs, resolution, rt.device, progress=cfg.progress and rt.main)
        dst = DeviceFaceset.load(data.dst_fs, resolution, rt.device, progress=cfg.progress and rt.main)
        return DeviceBatches(src, dst, cfg.batch_size, cfg.augment(), cfg.seed, start_step, rt.rank)
    dataset = data.dataset(resolution, cfg.augment(), cfg.seed)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, num_workers=cfg.workers,
                        sampler=StepSampler(start_step, cfg.batch_size, rt.rank, rt.world),
                        pin_memory=rt.device.type == "cuda", persistent_workers=cfg.workers > 0,
                        worker_init_fn=_leave_signals_to_trainer if cfg.workers > 0 else None,
                        prefetch_factor=4 if cfg.workers > 0 else None)
    return (to_device(batch, rt) for batch in loader)


def build_optimizer(params, cfg: TrainConfig, rt: Runtime, betas=(0.5, 0.999), weight_decay: float | None = None):
    """AdamW (DeepFaceLab's beta1 0.5); the fused kernel on CUDA (one launch for all parameters)."""
    return torch.optim.AdamW(params, lr=cfg.lr, betas=betas,
                             weight_decay=cfg.weight_decay if weight_decay is None else weight_decay,
                             fused=rt.device.type == "cuda")


def compute_losses(model, batch: dict[str, torch.Tensor], weights: LossWeights) -> dict[str, torch.Tensor]:
    """Forward both sides (src only when the batch has no dst) and sum their reconstruction losses ('total')."""
    pred = model(batch["src_input"], batch.get("dst_input"), batch.get("src_prior"))
    out: dict[str, torch.Tensor] = {}
    total = 0.0
    for role in ("src", "dst") if "dst_input" in batch else ("src",):
        terms = reconstruction_loss(pred[f"{role}_{role}"], pred[f"{role}_{role}_mask"], batch[f"{role}_target"],
                                    batch[f"{role}_mask"], batch[f"{role}_em"], weights)
        total = total + terms["total"]
        out.update({f"{role}_{k}": v for k, v in terms.items() if k != "total"})
    out["total"] = total
    out["_src_pred"] = pred["src_src"]
    return out


@torch.no_grad()
def evaluate_reconstruction(model: FaceSwapModel, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """Masked MSE and DSSIM of src and dst rebuilt from their unaugmented faces."""
    model.eval()
    pred = model(batch["src_input"], batch.get("dst_input"), batch.get("src_prior"))
    out = {}
    for role in ("src", "dst") if "dst_input" in batch else ("src",):
        m = batch[f"{role}_mask"]
        p, t = pred[f"{role}_{role}"] * m, batch[f"{role}_target"] * m
        out[f"{role}_mse"] = float(((p - t) ** 2).mean())
        out[f"{role}_dssim"] = float(dssim(p, t, max(3, int(p.shape[-1] / 11.6) | 1)))
    return out


@torch.no_grad()
def preview_image(model: FaceSwapModel, batch: dict[str, torch.Tensor]) -> np.ndarray:
    """BGR uint8 grid, one column per face; rows: src, src rebuilt, dst, dst rebuilt, dst->src swap."""
    was_training = model.training
    model.eval()
    pred = model(batch["src_input"], batch.get("dst_input"), batch.get("src_prior"))
    rows = [batch["src_target"], pred["src_src"]]
    faces = batch.get("dst_input", batch.get("preview_faces"))
    if faces is not None:  # a src-only run previews the swap of a few faces the base brings (``preview_faces``)
        _, swap, _ = model.swap(faces, batch.get("dst_prior"))
        rows += [faces, pred["dst_dst"], swap] if "dst_dst" in pred else [faces, swap]
    model.train(was_training)
    grid = torch.cat([torch.cat(list(r.float().cpu()), dim=2) for r in rows], dim=1)
    return (grid.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def preview_faces(face_type: str, size: int, crop_scale: float = 1.0) -> np.ndarray:
    """(4, size, size, 3) uint8 BGR: the package faces every machine has (scikit-image's astronaut, Eileen
    Collins, NASA; matplotlib's Grace Hopper; both public domain) aligned as the model expects, and their
    mirror images: what a src-only run's preview swaps."""
    import cv2
    import matplotlib.cbook
    import skimage.data

    from realtime.face.alignment import align_face, mesh_to_68
    from realtime.face.landmarks import FaceLandmarker

    photos = [np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1]),
              cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))]
    crops = []
    with FaceLandmarker(static_images=True) as landmarker:
        for photo in photos:
            face = max(landmarker.detect(photo), key=lambda f: f.size)
            crops.append(align_face(photo, mesh_to_68(face.points), size, face_type, crop_scale).image)
    crops += [np.ascontiguousarray(c[:, ::-1]) for c in crops]
    return np.stack(crops)


def _prior_inputs(src_fs, out: Path, progress: bool):
    """A prior model's reference (chosen once, kept in the run folder) and the src faceset's meshes."""
    from training.faceset_mesh import faceset_meshes
    from training.prior import choose_reference, load_reference, save_reference

    meshes = faceset_meshes(src_fs, progress=progress)
    reference = load_reference(out)
    if reference is None:
        reference = choose_reference(src_fs, meshes)
        out.mkdir(parents=True, exist_ok=True)
        save_reference(out, reference)
        print(f"reference prior: {reference.source} (frontal, mouth closed, sharp)", flush=True)
    return reference, meshes


def check_resume(ckpt, model_cfg: ModelConfig, face_type: str, crop_scale: float = 1.0) -> None:
    """Refuse a checkpoint whose model differs from what the command line asks for."""
    if ckpt.model_config != model_cfg:
        theirs, ours = ckpt.model_config.to_dict(), model_cfg.to_dict()
        diff = ", ".join(f"{k}: checkpoint {theirs[k]!r} vs asked {ours[k]!r}" for k in ours if theirs[k] != ours[k])
        raise TrainError(f"{ckpt.path} was trained with another model ({diff}); resume it with the same "
                         f"--preset/--resolution/widths, or choose a new --out folder")
    trained_on = ckpt.run_config.get("face_type")
    if trained_on and trained_on != face_type:
        raise TrainError(f"{ckpt.path} was trained on {trained_on} faces; these facesets are {face_type}: "
                         "resume with facesets of the same face type, or choose a new --out folder")
    trained_scale = ckpt.run_config.get("crop_scale", 1.0)
    if trained_scale != crop_scale:
        raise TrainError(f"{ckpt.path} was trained on faces cut at crop scale {trained_scale:g}; these facesets are "
                         f"{crop_scale:g}: resume with facesets of the same --crop-scale, or choose a new --out folder")


def choose_model(cfg: TrainConfig, data, ckpt) -> tuple[ModelConfig, object]:
    """The model a run builds and the base it starts from (None unless a new run from a base): a resumed run
    keeps its own model (one started from a base needs the base no more); a new run from a base takes the
    base's; otherwise the command line's. Refuses a checkpoint or base that does not fit the data."""
    if ckpt is not None and ckpt.run_config.get("base"):
        check_resume(ckpt, ckpt.model_config, data.face_type, data.crop_scale)
        return ckpt.model_config, None
    if ckpt is None and cfg.base:
        base = load_base(cfg.base)
        if (data.face_type, data.crop_scale) != (base.face_type, base.crop_scale):
            raise TrainError(f"the base was trained on {base.face_type} faces (crop scale {base.crop_scale:g}); "
                             f"{cfg.src} holds {data.face_type} faces (crop scale {data.crop_scale:g}): adapt them first "
                             "(`swapcam train` does so for a faceset or video given as --src)")
        return base.model_config, base
    model_cfg = cfg.model_config(data.resolution)
    if ckpt is not None:
        check_resume(ckpt, model_cfg, data.face_type, data.crop_scale)
    return model_cfg, None


def restore(ckpt, cfg: TrainConfig, rt: Runtime, model, opt, disc=None, disc_opt=None) -> int:
    """Load a checkpoint's weights, optimiser (when the same parts train), discriminator and RNG state into
    this run; returns the step it resumes at. This run's --lr and weight decay win over the saved ones."""
    model.load_state_dict(ckpt.model_state)
    same_parts = ckpt.run_config.get("train_parts", "all") == cfg.train_parts
    if ckpt.optimizer_state is not None and same_parts:
        opt.load_state_dict(ckpt.optimizer_state)
        for group in opt.param_groups:
            group.update(lr=cfg.lr, weight_decay=cfg.weight_decay)
    elif rt.main:  # weights alone (e.g. collected from a GPU run), or other parts train now
        why = "holds weights without optimiser state" if same_parts else "trained other parts"
        print(f"swapcam train: {ckpt.path} {why}; AdamW restarts", flush=True)
    if disc is not None and "disc" in ckpt.extra:
        disc.load_state_dict(ckpt.extra["disc"])
        disc_opt.load_state_dict(ckpt.extra["disc_optimizer"])
        for group in disc_opt.param_groups:
            group.update(lr=cfg.lr)
    if ckpt.extra.get("rng"):
        set_rng_state(ckpt.extra["rng"])
    return ckpt.step


def make_preview_batch(data, model_cfg: ModelConfig, seed: int, rt: Runtime) -> dict[str, torch.Tensor]:
    """The fixed faces preview.png shows, on the training device: the run's own (unaugmented), and for a
    src-only run the package faces to swap (``preview_faces``); prior models also get the reference warped
    onto each face swapped (``dst_prior``)."""
    batch = data.preview_batch(model_cfg.resolution, seed)
    if "dst_target" not in batch:
        batch["preview_faces"] = torch.from_numpy(preview_faces(data.face_type, model_cfg.resolution,
                                                                data.crop_scale)).permute(0, 3, 1, 2).float() / 255.0
    if data.reference is not None:
        from training.prior import dst_priors

        shown = batch.get("dst_target", batch.get("preview_faces"))
        faces = (shown.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        priors = dst_priors(data.reference, np.ascontiguousarray(faces))
        batch["dst_prior"] = torch.from_numpy(priors).permute(0, 3, 1, 2).float() / 255.0
    return to_device(batch, rt)


def _stop_flags(rt: Runtime, stop: bool, save: bool) -> tuple[bool, bool]:
    """Rank 0 decides when to stop and save; every rank follows (same step on all ranks)."""
    if rt.world == 1:
        return stop, save
    flags = torch.tensor([float(stop), float(save)], device=rt.device)
    dist.broadcast(flags, 0)
    return bool(flags[0]), bool(flags[1])


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) training as ``cfg`` says; returns where it stopped. Called from the main
    thread, Ctrl-C or SIGTERM finish the current step, save and stop (``interrupted``); a second
    signal raises ``ForcedStop`` at once and keeps the last saved checkpoint."""
    previous_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        with StopRequest("training") as stop_request:
            return _train(cfg, stop_request)
    finally:
        torch.set_num_threads(previous_threads)


def _train(cfg: TrainConfig, stop_request: StopRequest) -> TrainResult:
    if cfg.steps is None and cfg.minutes is None and cfg.cpu_minutes is None:
        raise TrainError("give a stopping rule: --steps N and/or --minutes M (or --cpu-minutes M)")
    if cfg.batch_size < 1 or cfg.lr <= 0:
        raise TrainError(f"batch size must be >= 1 and lr > 0 (got {cfg.batch_size}, {cfg.lr})")
    data = open_data(cfg)
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT_NAME
    ckpt = load_checkpoint(ckpt_path) if ckpt_path.exists() else None
    model_cfg, base = choose_model(cfg, data, ckpt)
    train_parts, resets = parse_parts(cfg.train_parts), parse_parts(cfg.reset_parts)
    if model_cfg.arch != "df" and train_parts != PARTS:
        raise TrainError("only the df architecture trains some parts alone: use --train-parts all")
    if getattr(data, "dst_fs", True) is None and any(p in train_parts for p in ("encoder", "decoder_dst")):
        raise TrainError(f"--train-parts {cfg.train_parts} trains the encoder or the dst decoder, which need dst faces: "
                         "give --dst, or train decoder_src (and inter) only")

    rt = setup_runtime(cfg.amp)
    torch.manual_seed(cfg.seed)
    model = FaceSwapModel(model_cfg).to(rt.device)
    if base is not None:
        base.load_into(model)
        reset_parts(model, resets, cfg.seed)
    trainable = freeze_parts(model, train_parts) if model_cfg.arch == "df" else list(model.parameters())
    disc = PatchDiscriminator().to(rt.device) if cfg.gan_power > 0 else None
    opt = build_optimizer(trainable, cfg, rt)
    disc_opt = build_optimizer(disc.parameters(), cfg, rt, weight_decay=0.0) if disc else None
    start_step = restore(ckpt, cfg, rt, model, opt, disc, disc_opt) if ckpt is not None else 0
    model = model.to(memory_format=torch.channels_last)
    net = model
    if rt.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
    weights = LossWeights(eyes_mouth=300.0 if cfg.eyes_mouth_priority else 0.0)
    forward_losses = lambda batch: compute_losses(net, batch, weights)  # noqa: E731
    if cfg.compile:  # the model and its losses in one compiled graph (the losses are many small kernels)
        forward_losses = torch.compile(forward_losses)
    scaler = torch.amp.GradScaler("cuda", enabled=rt.amp_dtype == torch.float16)

    data.prepare(model_cfg, out, rt.main and cfg.progress)
    preview_batch = make_preview_batch(data, model_cfg, cfg.seed, rt) if rt.main else None
    run_config = {**asdict(cfg), "face_type": data.face_type, "crop_scale": data.crop_scale,
                  "training_data": data.summaries(), "identity": cfg.identity or data.default_identity}
    if base is not None:
        run_config["base"] = base.record()
    elif ckpt is not None and ckpt.run_config.get("base"):
        run_config["base"] = ckpt.run_config["base"]
    writer = None
    if rt.main:
        out.mkdir(parents=True, exist_ok=True)
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(out / "tensorboard"), purge_step=start_step)

    cpu_before = float(ckpt.extra.get("cpu_seconds", 0.0)) if ckpt is not None else 0.0
    nonfinite = torch.zeros((), dtype=torch.bool, device=rt.device)  # set on the device; read every log_every
    checked_step = start_step

    def check_finite(step: int) -> None:
        """Raise if any loss since the last check was NaN/inf (one host read: a synchronisation)."""
        nonlocal checked_step
        if bool(nonfinite):
            raise TrainError(f"the loss became NaN or infinite between steps {checked_step} and {step}; the last "
                             f"checkpoint ({ckpt_path}) is kept — resume with a lower --lr")
        checked_step = step

    def checkpoint_now(step: int) -> None:
        check_finite(step)
        if not rt.main:
            return
        payload = {"model_config": model_cfg.to_dict(), "run_config": run_config, "step": step,
                   "model": model.state_dict(), "optimizer": opt.state_dict(), "rng": rng_state(),
                   "cpu_seconds": cpu_before + time.process_time() - cpu0}  # the run's training-loop CPU, all sessions
        if disc is not None:
            payload.update(disc=disc.state_dict(), disc_optimizer=disc_opt.state_dict())
        save_checkpoint(ckpt_path, payload)

    end_step = start_step + cfg.steps if cfg.steps is not None else None
    deadline = time.monotonic() + cfg.minutes * 60 if cfg.minutes is not None else None
    bar = None
    if rt.main and cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=end_step, initial=start_step, unit="step", dynamic_ncols=True, smoothing=0.05)
    cpu_budget = cfg.cpu_minutes * 60 if cfg.cpu_minutes is not None else None
    t0 = last_save = time.monotonic()
    cpu0 = time.process_time()
    step, interrupted, losses, history = start_step, False, {}, []
    model.train()
    try:
        batches = make_batches(cfg, rt, data, model_cfg.resolution, start_step)
        while True:
            now = time.monotonic()
            stop = ((end_step is not None and step >= end_step) or (deadline is not None and now >= deadline)
                    or (cpu_budget is not None and time.process_time() - cpu0 >= cpu_budget))
            save = now - last_save >= cfg.save_minutes * 60
            stop, save = _stop_flags(rt, stop or stop_request.requested, save)
            if stop:
                interrupted = stop_request.requested
                break
            if save:
                checkpoint_now(step)
                last_save = now
            batch = next(batches)
            if cfg.warmup_steps > 0:  # a function of the step alone, so a resumed run follows the same schedule
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps)
            with autocast(rt):
                terms = forward_losses(batch)
                loss = terms["total"]
                if disc is not None:
                    d_loss, g_loss = gan_losses(disc, batch["src_target"], terms["_src_pred"])
                    loss = loss + cfg.gan_power * g_loss
            nonfinite |= ~torch.isfinite(loss.detach())  # on the device: no wait for the GPU here
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            scaler.step(opt)
            if disc is not None:
                disc_opt.zero_grad(set_to_none=True)  # drop what the generator term put there
                with autocast(rt):
                    d_loss, _ = gan_losses(disc, batch["src_target"], terms["_src_pred"].detach())
                scaler.scale(d_loss).backward()
                if rt.world > 1:  # the discriminator is not DDP-wrapped (it runs thrice a step): average by hand
                    for p in disc.parameters():
                        dist.all_reduce(p.grad)
                        p.grad /= rt.world
                scaler.step(disc_opt)
                terms["gan_d"] = d_loss
            scaler.update()
            step += 1
            if step % cfg.log_every == 0 or step == end_step:
                check_finite(step)
            if rt.main and (step % cfg.log_every == 0 or step == end_step):
                losses = {k: float(v.detach()) for k, v in terms.items() if not k.startswith("_")}
                history.append({"step": step, "seconds": round(time.monotonic() - t0, 3), **losses})
                if writer:
                    for k, v in losses.items():
                        writer.add_scalar(f"loss/{k}", v, step)
                if bar is None and not cfg.progress:  # logs: one line per log_every steps
                    print(f"step {step}: loss {losses['total']:.4f} src_mse {losses['src_mse']:.5f}"
                          + (f" dst_mse {losses['dst_mse']:.5f}" if "dst_mse" in losses else "")
                          + f" ({time.monotonic() - t0:.0f} s, {time.process_time() - cpu0:.0f} CPU-s)", flush=True)
                if bar is not None:
                    post = {"loss": f"{losses['total']:.3f}", "src": f"{losses['src_mse']:.4f}"}
                    if "dst_mse" in losses:
                        post["dst"] = f"{losses['dst_mse']:.4f}"
                    if deadline is not None:
                        post["left"] = f"{max(0.0, deadline - time.monotonic()) / 60:.1f}min"
                    elif cpu_budget is not None:
                        post["left"] = f"{max(0.0, cpu_budget - time.process_time() + cpu0) / 60:.1f}cpu-min"
                    bar.set_postfix(post, refresh=False)
            if bar is not None:
                bar.update(1)
            if rt.main and cfg.preview_every > 0 and step % cfg.preview_every == 0:
                image = preview_image(model, preview_batch)
                write_image(out / "preview.png", image)
                if writer:
                    writer.add_image("preview", image[:, :, ::-1].copy(), step, dataformats="HWC")
    finally:
        if bar is not None:
            bar.close()
    checkpoint_now(step)
    if rt.main and cfg.preview_every > 0:
        write_image(out / "preview.png", preview_image(model, preview_batch))
    if writer:
        writer.close()
    seconds = time.monotonic() - t0
    cpu_seconds = time.process_time() - cpu0
    done = step - start_step
    return TrainResult(step=step, start_step=start_step, interrupted=interrupted, seconds=seconds,
                       samples_per_s=done * cfg.batch_size * rt.world / seconds if seconds > 0 else math.nan,
                       last_losses=losses, history=history, checkpoint=ckpt_path if rt.main else None, model=model,
                       cpu_seconds=cpu_seconds)


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


__all__ = ["TrainConfig", "TrainResult", "TrainError", "CheckpointError", "ForcedStop", "train", "evaluate_reconstruction",
           "preview_image", "cleanup_distributed"]
