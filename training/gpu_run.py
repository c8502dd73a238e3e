"""`make gpu-train` in three steps: pack here, train on a GPU machine, collect here.

  python -m training.gpu_run pack --src FACESET --dst FACESET [--resume RUN_DIR] [training settings] --out .gpu/train
  python -m training.gpu_run train --pack .gpu/train --out OUT_DIR [--minutes 6] [--bench df:256:64]
  python -m training.gpu_run collect OUT_DIR --run RUN_DIR      (then: swapcam export RUN_DIR --out models/NAME.onnx --consent TEXT)

``pack`` runs where the facesets are. It writes into one ignored folder everything the GPU machine
needs (that machine receives the work tree and named folders only, 64 MiB in all): both facesets in
one archive under ``--max-faceset-mb`` (faces evenly thinned if they do not fit, said so), the
checkpoint to resume from where given (whole if it fits, else its weights in fp16), and the training
settings (``plan.json``); then it prints the command to run there.

``train`` runs on the GPU machine (or any machine: a CPU runs the same path at toy size). It trains
with the real trainer for ``--minutes`` (batches made on the GPU, bf16, channels-last, fused AdamW,
``torch.compile``), optionally first timing other presets (``--bench``, ``training.bench_model``'s
step figures), and writes to OUT_DIR only what a person takes home: the model as fp16 weights split
into files under 16 MB, ``preview.png``, the TensorBoard scalars, and ``figures.json`` (samples/s,
MFU, the loss curve, the bench figures). The full checkpoint stays in ``--work``.

``collect`` turns those fp16 weights back into a checkpoint folder that ``swapcam export`` (and
``swapcam train``, with a fresh optimiser) reads.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from training.faceset_mesh import CACHE_NAME
from training.prior import REFERENCE_FILE

PLAN_NAME = "plan.json"
ARCHIVE_NAME = "facesets.tar"
RESUME_DIR = "resume"
WEIGHTS_FORMAT = "swapcam-weights-fp16"
PART_LIMIT = 15 * 2**20  # bytes of tensor data per weights file: each file stays under 16 MB
DEVICE_CARRY_LIMIT = 64 * 2**20  # what one device call carries (work tree + named folders)
PLAN_KEYS = ("preset", "resolution", "ae_dims", "e_dims", "d_dims", "d_mask_dims", "batch_size", "lr", "seed",
             "flip", "random_warp", "color_transfer", "eyes_mouth_priority", "identity")


class GpuRunError(RuntimeError):
    """A pack, run or collect that cannot be done as asked."""


def _say(text: str) -> None:
    print(f"gpu_run: {text}", flush=True)


# ---- fp16 weights split into files -----------------------------------------------------------------

def write_fp16_weights(state: dict, meta: dict, folder: Path, limit: int = PART_LIMIT) -> list[Path]:
    """Write a model state dict as fp16 tensors in files ``weights-fp16-NN.pt`` of at most ``limit``
    bytes of tensor data each (one tensor larger than that is cut along its first axis)."""
    import torch

    from realtime.util.atomic_files import atomic_path

    pieces: list[tuple[str, int, torch.Tensor]] = []  # (name, row offset, fp16 chunk)
    for name, value in state.items():
        value = value.detach().cpu()
        value = value.half() if value.is_floating_point() else value
        rows = max(1, limit // max(1, value[0].numel() * value.element_size())) if value.dim() else 1
        if value.dim() and value.numel() * value.element_size() > limit:
            for start in range(0, value.shape[0], rows):
                pieces.append((name, start, value[start:start + rows].clone()))
        else:
            pieces.append((name, -1, value))
    parts: list[list] = [[]]
    used = 0
    for piece in pieces:
        size = piece[2].numel() * piece[2].element_size()
        if parts[-1] and used + size > limit:
            parts.append([])
            used = 0
        parts[-1].append(piece)
        used += size
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, part in enumerate(parts):
        path = folder / f"weights-fp16-{i:02d}.pt"
        payload = {"format": WEIGHTS_FORMAT, "part": i, "parts": len(parts), **meta,
                   "tensors": [{"name": n, "offset": o, "value": v} for n, o, v in part]}
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        paths.append(path)
    return paths


def read_fp16_weights(folder: Path) -> tuple[dict, dict]:
    """(state dict in float32, metadata) from the ``weights-fp16-NN.pt`` files of ``folder``."""
    import torch

    paths = sorted(Path(folder).glob("weights-fp16-*.pt"))
    if not paths:
        raise GpuRunError(f"{folder} holds no weights-fp16-NN.pt files (the output of `gpu_run train`)")
    chunks: dict[str, list] = {}
    meta: dict = {}
    for path in paths:
        data = torch.load(path, map_location="cpu", weights_only=True)
        if data.get("format") != WEIGHTS_FORMAT:
            raise GpuRunError(f"{path} is not a {WEIGHTS_FORMAT} file")
        if data["parts"] != len(paths):
            raise GpuRunError(f"{folder} holds {len(paths)} weight files but they say {data['parts']}: one is missing")
        meta = {k: v for k, v in data.items() if k not in ("tensors", "part", "parts", "format")}
        for t in data["tensors"]:
            chunks.setdefault(t["name"], []).append((t["offset"], t["value"]))
    state = {}
    for name, pieces in chunks.items():
        pieces.sort(key=lambda p: p[0])
        value = pieces[0][1] if pieces[0][0] < 0 else torch.cat([v for _, v in pieces])
        state[name] = value.float() if value.is_floating_point() else value
    return state, meta


# ---- pack ------------------------------------------------------------------------------------------

def _slim_record(rec) -> dict:
    """What training reads of a face record (source landmarks and matrix dropped: they are not used)."""
    d = asdict(rec)
    d.update(landmarks=[], matrix=[], aligned_landmarks=[[round(x, 1), round(y, 1)] for x, y in rec.aligned_landmarks])
    return d


def _faceset_members(faceset, name: str, keep_every: int) -> list[tuple[str, bytes]]:
    from training.faceset import FacesetHeader

    records = faceset.records[::keep_every]
    header = json.dumps(asdict(FacesetHeader(resolution=faceset.resolution, face_type=faceset.face_type,
                                             crop_scale=faceset.crop_scale)))
    manifest = "\n".join([header] + [json.dumps(_slim_record(r), separators=(",", ":")) for r in records]) + "\n"
    members = [(f"{name}/faceset.jsonl", manifest.encode())]
    members += [(f"{name}/{r.file}", (faceset.path / r.file).read_bytes()) for r in records]
    meshes = _mesh_cache_member(faceset, records)
    if meshes is not None:  # prior models need the meshes, and the GPU machine has no MediaPipe to find them
        members.append((f"{name}/{CACHE_NAME}", meshes))
    return members


def _mesh_cache_member(faceset, records) -> bytes | None:
    """The faceset's mesh cache (training.faceset_mesh) for ``records`` only, as .npz bytes; None if it has none."""
    import numpy as np

    path = faceset.path / CACHE_NAME
    if not path.exists():
        return None
    with np.load(path) as data:
        known = dict(zip(data["files"].tolist(), data["meshes"]))
    files = [r.file for r in records if r.file in known]
    buf = io.BytesIO()
    np.savez_compressed(buf, files=np.array(files), meshes=np.stack([known[f] for f in files]))
    return buf.getvalue()


def _write_archive(path: Path, members: list[tuple[str, bytes]]) -> None:
    from realtime.util.atomic_files import atomic_path

    with atomic_path(path) as tmp, tarfile.open(tmp, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def pack(src: str, dst: str, out: Path, settings: dict, resume: str | None = None, max_faceset_mb: float = 40.0,
         max_total_mb: float = 56.0) -> dict:
    """Write the pack folder and return its plan (see the module docstring)."""
    from training.checkpoint import load_checkpoint
    from training.dataset import open_facesets

    src_fs, dst_fs = open_facesets(src, dst)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / PLAN_NAME).is_file():
        raise GpuRunError(f"{out} exists and is not a gpu_run pack; refusing to write into it (choose another --out)")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    names = {"src": src_fs.path.resolve().name, "dst": dst_fs.path.resolve().name}
    if names["src"] == names["dst"]:
        names = {"src": names["src"] + "_src", "dst": names["dst"] + "_dst"}
    budget = max_faceset_mb * 1e6
    sizes = {role: sum((fs.path / r.file).stat().st_size for r in fs.records) for role, fs in
             (("src", src_fs), ("dst", dst_fs))}
    keep_every = max(1, math.ceil(sum(sizes.values()) / budget))
    while True:
        members = (_faceset_members(src_fs, names["src"], keep_every) + _faceset_members(dst_fs, names["dst"], keep_every))
        archive_bytes = sum(len(d) + 1024 for _, d in members)
        if archive_bytes <= budget or keep_every > 10_000:
            break
        keep_every += 1
    if archive_bytes > budget:
        raise GpuRunError(f"the facesets do not fit in {max_faceset_mb:g} MB even thinned; raise --max-faceset-mb")
    _write_archive(out / ARCHIVE_NAME, members)
    plan = {"facesets": names, "faces": {"src": len(src_fs.records[::keep_every]), "dst": len(dst_fs.records[::keep_every])},
            "faces_in_full": {"src": len(src_fs), "dst": len(dst_fs)}, "keep_every": keep_every,
            "settings": {"identity": src_fs.path.resolve().name, **{k: v for k, v in settings.items() if v is not None}},
            "resume": None}
    if keep_every > 1:
        _say(f"the facesets ({sum(sizes.values()) / 1e6:.1f} MB of images) are over {max_faceset_mb:g} MB: one face "
             f"in {keep_every} is packed ({plan['faces']['src']} src, {plan['faces']['dst']} dst)")
    if resume:
        ckpt = load_checkpoint(resume)
        left = max_total_mb * 1e6 - (out / ARCHIVE_NAME).stat().st_size
        (out / RESUME_DIR).mkdir()
        if (ckpt.path.parent / REFERENCE_FILE).is_file():  # a prior model's reference goes with its weights
            shutil.copy2(ckpt.path.parent / REFERENCE_FILE, out / RESUME_DIR / REFERENCE_FILE)
            left -= (out / RESUME_DIR / REFERENCE_FILE).stat().st_size
        if ckpt.path.stat().st_size <= left:
            shutil.copy2(ckpt.path, out / RESUME_DIR / ckpt.path.name)
            plan["resume"] = {"kind": "checkpoint", "step": ckpt.step}
        else:
            meta = {"model_config": ckpt.model_config.to_dict(), "run_config": ckpt.run_config, "step": ckpt.step}
            paths = write_fp16_weights(ckpt.model_state, meta, out / RESUME_DIR)
            if sum(p.stat().st_size for p in paths) > left:
                shutil.rmtree(out)
                raise GpuRunError(f"{ckpt.path}: even its fp16 weights do not fit beside the facesets within "
                                  f"{max_total_mb:g} MB; lower --max-faceset-mb")
            plan["resume"] = {"kind": "fp16 weights (the optimiser restarts)", "step": ckpt.step}
            _say(f"{ckpt.path} is too large to carry whole: its weights go as fp16, and AdamW restarts there")
    from realtime.util.atomic_files import write_text

    write_text(out / PLAN_NAME, json.dumps(plan, indent=2))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    plan["bytes"] = total
    if total > DEVICE_CARRY_LIMIT - 8 * 2**20:
        _say(f"warning: the pack is {total / 2**20:.1f} MiB; with the work tree it may pass the 64 MiB a device call carries")
    return plan


# ---- train (on the GPU machine) ---------------------------------------------------------------------

def _unpack(pack_dir: Path, work: Path) -> dict:
    plan_path = pack_dir / PLAN_NAME
    if not plan_path.is_file():
        raise GpuRunError(f"{pack_dir} is not a gpu_run pack (no {PLAN_NAME}); make one with `make gpu-train`")
    plan = json.loads(plan_path.read_text(encoding="utf-8"))
    facesets = work / "facesets"
    if facesets.exists():
        shutil.rmtree(facesets)
    facesets.mkdir(parents=True)
    with tarfile.open(pack_dir / ARCHIVE_NAME) as tar:
        tar.extractall(facesets, filter="data")
    return plan


def _resume_into(pack_dir: Path, plan: dict, run_dir: Path) -> None:
    from training.checkpoint import CHECKPOINT_NAME, save_checkpoint

    if not plan.get("resume"):
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    if (pack_dir / RESUME_DIR / REFERENCE_FILE).is_file():
        shutil.copy2(pack_dir / RESUME_DIR / REFERENCE_FILE, run_dir / REFERENCE_FILE)
    whole = pack_dir / RESUME_DIR / CHECKPOINT_NAME
    if whole.is_file():
        shutil.copy2(whole, run_dir / CHECKPOINT_NAME)
        return
    state, meta = read_fp16_weights(pack_dir / RESUME_DIR)
    save_checkpoint(run_dir / CHECKPOINT_NAME, {**meta, "model": state})


def parse_bench(spec: str) -> list[tuple[str, int, int]]:
    """'df:256:64,lite:128:512' -> [(preset, resolution, batch), ...]."""
    out = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        parts = item.split(":")
        try:
            out.append((parts[0], int(parts[1]), int(parts[2])))
        except (IndexError, ValueError):
            raise GpuRunError(f"--bench {item!r}: write PRESET:RESOLUTION:BATCH, e.g. df:256:64") from None
    return out


def _steady_samples_per_s(history: list[dict], batch: int) -> float | None:
    """Samples/s between the first and last logged steps (start-up, decoding and compilation left out)."""
    if len(history) < 2:
        return None
    first, last = history[0], history[-1]
    seconds = last["seconds"] - first["seconds"]
    return (last["step"] - first["step"]) * batch / seconds if seconds > 0 else None


def run_training(pack_dir: Path, out: Path, work: Path, minutes: float | None, steps: int | None,
                 bench: list[tuple[str, int, int]], bench_steps: int, compile: bool | None, batch_size: int | None,
                 log_every: int, progress: bool, threads: int | None = None) -> dict:
    """Unpack, optionally bench, train, and write OUT (see the module docstring); returns the figures."""
    import torch

    from training.bench_model import step_figures
    from training.checkpoint import load_checkpoint
    from training.dataset import AugmentConfig, PairDataset, open_facesets
    from training.losses import LossWeights
    from training.model import FaceSwapModel
    from training.perf import datasheet_peak_tflops, measured_matmul_tflops, mfu, training_step_flops
    from training.trainer import TrainConfig, train

    t_start = time.monotonic()
    phases: dict[str, float] = {}
    plan = _unpack(pack_dir, work)
    src = work / "facesets" / plan["facesets"]["src"]
    dst = work / "facesets" / plan["facesets"]["dst"]
    run_dir = work / "run"
    _resume_into(pack_dir, plan, run_dir)
    phases["unpack_s"] = time.monotonic() - t_start
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    compile = cuda if compile is None else compile
    if compile:
        import torch._dynamo

        try:  # a graph dynamo cannot compile runs eagerly instead of failing the run
            torch._dynamo.config.suppress_errors = True
        except AttributeError:
            _say("this torch has no torch._dynamo.config.suppress_errors; a compile error will stop the run")
    figures: dict = {"device": datasheet_peak_tflops(device)[1], "torch": torch.__version__, "cuda": cuda,
                     "python": sys.version.split()[0], "plan": plan, "bench": []}
    t = time.monotonic()
    for preset, resolution, batch in bench:
        _say(f"bench {preset} {resolution} px batch {batch} ...")
        try:
            f = step_figures(str(src), str(dst), preset, resolution, batch, bench_steps, 3, 5, threads=threads)
        except torch.OutOfMemoryError as exc:  # a batch too big for this GPU: say so, go on training
            f = {"preset": preset, "resolution": resolution, "batch_size": batch, "error": str(exc).splitlines()[0]}
        figures["bench"].append(f)
        from training.bench_model import format_step_figures

        print(format_step_figures(f) if "error" not in f else f"bench {preset}: {f['error']}", flush=True)
        if cuda:
            torch.cuda.empty_cache()
    phases["bench_s"] = time.monotonic() - t

    settings = dict(plan["settings"])
    if batch_size:
        settings["batch_size"] = batch_size
    s_fs, d_fs = open_facesets(src, dst)
    prior = TrainConfig(src=str(src), dst=str(dst), out=str(run_dir), **settings).model_config(s_fs.resolution).prior
    # prior models warp the reference per sample on the CPU (DataLoader workers); the others augment on the GPU
    workers = max(1, min(12, (os.cpu_count() or 2) - 2)) if prior else 0
    cfg = TrainConfig(src=str(src), dst=str(dst), out=str(run_dir), minutes=minutes, steps=steps, compile=compile,
                      workers=workers, log_every=log_every, preview_every=10**9, save_minutes=1e9, progress=progress,
                      threads=threads, tensorboard=True, **settings)
    model_cfg = cfg.model_config(s_fs.resolution)
    t = time.monotonic()
    length = f"{minutes:g} minutes" if minutes else f"{steps} steps"
    _say(f"training {model_cfg.preset} {model_cfg.resolution} px, batch {cfg.batch_size}, {length} on "
         f"{figures['device']} (compile {compile})")
    result = train(cfg)
    phases["train_s"] = time.monotonic() - t
    reference = meshes = None
    if model_cfg.prior:  # the FLOPs of a prior model's step need its reference (chosen by train) and meshes
        from training.faceset_mesh import faceset_meshes
        from training.prior import load_reference

        reference, meshes = load_reference(run_dir), faceset_meshes(s_fs, progress=False)
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run_dir / REFERENCE_FILE, out / REFERENCE_FILE)  # collect brings it back for export
    counted = PairDataset(s_fs, d_fs, model_cfg.resolution, AugmentConfig.off(), 0, reference, meshes).fixed_batch(2)
    torch.manual_seed(0)
    flops = training_step_flops(FaceSwapModel(model_cfg).to(memory_format=torch.channels_last), counted,
                                LossWeights(), cfg.batch_size)
    peak, _ = datasheet_peak_tflops(device)
    measured = measured_matmul_tflops(device)
    steady = _steady_samples_per_s(result.history, cfg.batch_size)
    overall = result.samples_per_s
    ckpt = load_checkpoint(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"model_config": ckpt.model_config.to_dict(), "run_config": ckpt.run_config, "step": ckpt.step}
    weights = write_fp16_weights(ckpt.model_state, meta, out)
    if (run_dir / "preview.png").exists():
        shutil.copy2(run_dir / "preview.png", out / "preview.png")
    if (run_dir / "tensorboard").is_dir():
        shutil.copytree(run_dir / "tensorboard", out / "tensorboard", dirs_exist_ok=True)
    figures.update({
        "model": model_cfg.to_dict(), "batch_size": cfg.batch_size, "steps": result.step - result.start_step,
        "start_step": result.start_step, "end_step": result.step, "train_seconds": result.seconds,
        "samples_per_s_overall": overall, "samples_per_s_steady": steady,
        "model_gflops_per_sample": flops["model"] / cfg.batch_size / 1e9,
        "peak_tflops_datasheet_bf16": peak, "peak_tflops_measured_matmul": measured,
        "mfu_datasheet": mfu(flops["model"] / cfg.batch_size, steady or overall, peak),
        "mfu_measured_matmul": mfu(flops["model"] / cfg.batch_size, steady or overall, measured),
        "loss_curve": result.history, "last_losses": result.last_losses,
        "weights_files": [p.name for p in weights], "phases_s": {**phases, "total_s": time.monotonic() - t_start},
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
    })
    from realtime.util.atomic_files import write_text

    write_text(out / "figures.json", json.dumps(figures, indent=2, default=str))
    pct = lambda v: "n/a" if v is None else f"{v * 100:.1f}%"
    _say(f"{figures['steps']} steps in {result.seconds:.0f} s: {overall:.1f} samples/s overall, "
         f"{(steady or float('nan')):.1f} steady; MFU {pct(figures['mfu_datasheet'])} (datasheet), "
         f"{pct(figures['mfu_measured_matmul'])} (measured matmul); last loss {result.last_losses.get('total', float('nan')):.4f}")
    _say(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}")
    return figures


# ---- collect ---------------------------------------------------------------------------------------

def collect(out_dir: Path, run_dir: Path, force: bool = False) -> Path:
    """fp16 weights of a GPU run -> RUN_DIR/checkpoint.pt (weights, no optimiser state)."""
    from training.checkpoint import CHECKPOINT_NAME, save_checkpoint

    state, meta = read_fp16_weights(out_dir)
    target = Path(run_dir) / CHECKPOINT_NAME
    if target.exists() and not force:
        raise GpuRunError(f"{target} exists; refusing to overwrite it (pass --force, or choose another --run)")
    save_checkpoint(target, {**meta, "model": state})
    if (Path(out_dir) / REFERENCE_FILE).is_file():  # a prior model's reference: export embeds it
        shutil.copy2(Path(out_dir) / REFERENCE_FILE, Path(run_dir) / REFERENCE_FILE)
    return target


# ---- command line ----------------------------------------------------------------------------------

def device_command(pack_dir: str, minutes: float, bench: str) -> str:
    """The command that trains from ``pack_dir`` on the GPU machine (output into $OUT)."""
    extra = f" --bench {bench}" if bench else ""
    return f"PYTHONUNBUFFERED=1 python3 -m training.gpu_run train --pack {pack_dir} --out $OUT --minutes {minutes:g}{extra}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.gpu_run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    pk = sub.add_parser("pack", help="pack facesets, checkpoint and settings for a GPU machine")
    pk.add_argument("--src", required=True, help="src faceset")
    pk.add_argument("--dst", required=True, help="dst faceset")
    pk.add_argument("--out", type=Path, default=Path(".gpu/train"), help="the pack folder (an ignored folder of the repo)")
    pk.add_argument("--resume", default=None, help="run folder or checkpoint to continue from")
    pk.add_argument("--max-faceset-mb", type=float, default=40.0, help="size limit of the facesets archive")
    pk.add_argument("--max-total-mb", type=float, default=56.0, help="size limit of the whole pack")
    pk.add_argument("--minutes", type=float, default=6.0, help="training minutes in the printed command")
    pk.add_argument("--bench", default="", help="presets to time first in the printed command, e.g. df:256:64")
    for key, kind, default in (("preset", str, "lite"), ("resolution", int, None), ("ae-dims", int, None),
                               ("e-dims", int, None), ("d-dims", int, None), ("d-mask-dims", int, None),
                               ("batch-size", int, 256), ("lr", float, 3e-4), ("seed", int, 0),
                               ("color-transfer", float, 0.5), ("identity", str, None)):
        pk.add_argument(f"--{key}", type=kind, default=default, help=f"training setting (default {default})")
    pk.add_argument("--flip", action="store_true", help="random horizontal flips")
    tr = sub.add_parser("train", help="train from a pack and write the take-home outputs")
    tr.add_argument("--pack", type=Path, default=Path(".gpu/train"), help="the pack folder")
    tr.add_argument("--out", type=Path, required=True, help="output folder (weights, preview.png, tensorboard/, figures.json)")
    tr.add_argument("--work", type=Path, default=None, help="work folder: unpacked facesets and the full run (default: a temp folder)")
    tr.add_argument("--minutes", type=float, default=6.0, help="training minutes (default 6)")
    tr.add_argument("--steps", type=int, default=None, help="train this many steps instead (toy runs)")
    tr.add_argument("--batch-size", type=int, default=None, help="override the pack's batch size")
    tr.add_argument("--bench", default="", help="first time these presets' training steps: PRESET:RES:BATCH,...")
    tr.add_argument("--bench-steps", type=int, default=20, help="timed steps per bench preset")
    tr.add_argument("--no-compile", action="store_true", help="no torch.compile (on by default on CUDA)")
    tr.add_argument("--log-every", type=int, default=50, help="steps between loss readings (the only GPU waits)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    tr.add_argument("--threads", type=int, default=None, help="torch CPU threads (CPU toy runs on a shared machine: 1)")
    co = sub.add_parser("collect", help="fp16 weights of a GPU run -> a checkpoint folder swapcam export reads")
    co.add_argument("out_dir", type=Path, help="the GPU run's output folder")
    co.add_argument("--run", type=Path, required=True, help="run folder to write checkpoint.pt into")
    co.add_argument("--force", action="store_true", help="overwrite an existing checkpoint")
    args = p.parse_args(argv)

    from training.checkpoint import CheckpointError
    from training.faceset import FacesetError
    from training.trainer import TrainError

    try:
        if args.what == "pack":
            settings = {"preset": args.preset, "resolution": args.resolution, "ae_dims": args.ae_dims,
                        "e_dims": args.e_dims, "d_dims": args.d_dims, "d_mask_dims": args.d_mask_dims,
                        "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed, "flip": args.flip,
                        "color_transfer": args.color_transfer, "identity": args.identity}
            plan = pack(args.src, args.dst, args.out, settings, args.resume, args.max_faceset_mb, args.max_total_mb)
            _say(f"packed {plan['faces']['src']} src + {plan['faces']['dst']} dst faces"
                 + (f", resume from step {plan['resume']['step']} ({plan['resume']['kind']})" if plan["resume"] else "")
                 + f": {plan['bytes'] / 2**20:.1f} MiB in {args.out}/")
            print(f"\nOn the GPU machine, in the repository root with {args.out} beside it, run:\n\n"
                  f"  {device_command(str(args.out), args.minutes, args.bench)}\n\n"
                  f"($OUT: any output folder; through this workplace's device tool: carry [\"{args.out.parts[0]}\"].)\n"
                  f"Then here: python -m training.gpu_run collect OUT --run RUN_DIR && swapcam export RUN_DIR --out models/NAME.onnx --consent TEXT",
                  flush=True)
        elif args.what == "train":
            work = args.work or Path(tempfile.mkdtemp(prefix="swapcam-gpu-run-"))
            run_training(args.pack, args.out, work, None if args.steps else args.minutes, args.steps,
                         parse_bench(args.bench), args.bench_steps, False if args.no_compile else None,
                         args.batch_size, args.log_every, not args.no_progress, args.threads)
        else:
            path = collect(args.out_dir, args.run, args.force)
            _say(f"wrote {path}; export it with: swapcam export {args.run} --out models/NAME.onnx --consent TEXT")
    except (GpuRunError, FacesetError, CheckpointError, TrainError, ValueError, OSError) as exc:
        print(f"gpu_run: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GLOG_minloglevel", "2")
    raise SystemExit(main())
