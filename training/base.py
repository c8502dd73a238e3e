"""The pretrained base: a reference-prior model trained on many people, which `swapcam train` starts from.

A base file (``models/base/base.pt``) holds the model's configuration, its weights in float16, the face
type and crop it was trained on, the fine-tuning recipe (which parts train, learning rate, warm-up,
batch) and metadata: the data it saw with credits, the people left out, steps and CPU time. It is written
by ``python -m training.base export RUN --out FILE`` from a pretraining run (``make base-model``) and read
with ``torch.load(weights_only=True)``: plain tensors and strings, no pickled code.

A new run loads every part of the base, re-initialises what the recipe resets, freezes what it does not
train, and from then on is an ordinary run: its checkpoint holds the whole model, so resuming never
needs the base again, and the export records which base it came from (``swapcam.base``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from training.model import FaceSwapModel, ModelConfig

FORMAT = "swapcam-base"
VERSION = 1
DEFAULT_BASE = Path(__file__).resolve().parents[1] / "models" / "base" / "base.pt"
PARTS = ("encoder", "inter", "decoder_src", "decoder_dst")  # the df architecture's parts
OPT_OUT = "--from-scratch"


class BaseError(ValueError):
    """A base file that is missing, unreadable, or does not fit."""


@dataclass(frozen=True)
class Recipe:
    """How a run starts from the base: the parts that train, their learning rate, the warm-up, the batch."""

    train_parts: str = "decoder_src"
    lr: float = 3e-4
    warmup_steps: int = 20
    batch_size: int = 16
    reset_parts: str = ""
    cross_identity: float = 0.0  # fraction of src samples with another person's pasted skin (training.skin_pool)

    def to_dict(self) -> dict:
        return dict(train_parts=self.train_parts, lr=self.lr, warmup_steps=self.warmup_steps,
                    batch_size=self.batch_size, reset_parts=self.reset_parts, cross_identity=self.cross_identity)


@dataclass
class Base:
    """A loaded base file."""

    path: Path
    model_config: ModelConfig
    face_type: str
    crop_scale: float
    state: dict
    recipe: Recipe
    metadata: dict = field(default_factory=dict)
    sha256: str = ""
    size_bytes: int = 0

    @property
    def name(self) -> str:
        return self.metadata.get("name", self.path.stem)

    def describe(self) -> str:
        """One line: which base, how big, what it learnt from."""
        meta = self.metadata
        people = meta.get("people")
        return (f"base {self.name!r} ({self.path}, {self.size_bytes / 2**20:.1f} MiB, {self.model_config.resolution} px "
                f"{self.face_type}, {meta.get('steps', '?')} steps" + (f" on {people} people" if people else "") + ")")

    def record(self) -> dict:
        """What a run and its export keep about the base (run_config["base"], metadata swapcam.base)."""
        return {"name": self.name, "file": self.path.name, "sha256": self.sha256, "steps": self.metadata.get("steps"),
                "people": self.metadata.get("people"), "cpu_hours": self.metadata.get("cpu_hours"),
                "credits": self.metadata.get("credits", "")}

    def load_into(self, model: FaceSwapModel) -> None:
        """Copy the base's weights (float16 -> the model's dtype) into ``model``, which must be of its config."""
        if model.config != self.model_config:
            raise BaseError(f"{self.path}: the base is a {self.model_config.preset} model at "
                            f"{self.model_config.resolution} px; this run builds another model")
        model.load_state_dict({k: v.float() for k, v in self.state.items()})


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _fix(path: Path) -> str:
    return f"rebuild it with `make base-model`, give another with --base FILE, or train without it ({OPT_OUT})"


def load_base(path: str | Path) -> Base:
    """Read and check a base file; BaseError (one line) says what is wrong and what to do."""
    path = Path(path)
    if not path.is_file():
        raise BaseError(f"base model not found: {path}; {_fix(path)}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for torn or foreign files
        raise BaseError(f"{path} is not a readable base model ({type(exc).__name__}); {_fix(path)}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BaseError(f"{path} is not a swapcam base model (no format={FORMAT!r}); {_fix(path)}")
    try:
        cfg = ModelConfig(**data["model_config"]).validate()
        state = data["state"]
        recipe = Recipe(**data.get("recipe", {}))
        face_type, crop_scale = str(data["face_type"]), float(data.get("crop_scale", 1.0))
    except (KeyError, TypeError, ValueError) as exc:
        raise BaseError(f"{path}: incomplete base model ({type(exc).__name__}: {exc}); {_fix(path)}") from exc
    expected = FaceSwapModel(cfg).state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        what = f"lacks {missing[0]}" if missing else f"has an unknown tensor {extra[0]}"
        raise BaseError(f"{path}: the weights do not fit the model it describes ({what}, {len(missing) + len(extra)} "
                        f"mismatches); {_fix(path)}")
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise BaseError(f"{path}: {name} has shape {list(state[name].shape)}, the model it describes needs "
                            f"{list(tensor.shape)}; {_fix(path)}")
    return Base(path=path, model_config=cfg, face_type=face_type, crop_scale=crop_scale, state=state, recipe=recipe,
                metadata=dict(data.get("metadata", {})), sha256=file_sha256(path), size_bytes=path.stat().st_size)


def parse_parts(text: str) -> tuple[str, ...]:
    """'decoder_src,inter' -> ('decoder_src', 'inter'); 'all' -> every part; '' -> none. A part's child module
    may be named alone ('decoder_src.pyramid': the rest of decoder_src stays frozen)."""
    text = (text or "").strip()
    if text == "all":
        return PARTS
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in parts if p.split(".")[0] not in PARTS]
    if unknown:
        raise ValueError(f"unknown model part(s) {unknown}; choose among {', '.join(PARTS)} (or all), or a child "
                         "module of one (decoder_src.pyramid)")
    return parts


def reset_parts(model: FaceSwapModel, parts: tuple[str, ...], seed: int) -> None:
    """Give ``parts`` of ``model`` fresh initial weights (those of a new model of the same config, ``seed``)."""
    if not parts:
        return
    torch.manual_seed(seed)
    fresh = FaceSwapModel(model.config)
    for part in parts:
        model.get_submodule(part).load_state_dict(fresh.get_submodule(part).state_dict())


def freeze_parts(model: FaceSwapModel, train: tuple[str, ...]) -> list[torch.nn.Parameter]:
    """Freeze every parameter outside the parts (or child modules) ``train``; returns those that still train.
    A child module that names no parameter is a ValueError."""
    trainable, used = [], set()
    for part in PARTS:
        for name, p in getattr(model, part).named_parameters(prefix=part):
            owner = next((t for t in train if name == t or name.startswith(t + ".")), None)
            p.requires_grad_(owner is not None)
            if owner is not None:
                trainable.append(p)
                used.add(owner)
    missing = [t for t in train if t not in used and t not in PARTS]
    if missing:
        raise ValueError(f"no parameters in {missing} of this model")
    return trainable


def save_base(checkpoint: str | Path, out: str | Path, *, name: str, recipe: Recipe, metadata: dict) -> Base:
    """Write the model of a pretraining checkpoint as a base file (float16 weights), atomically; returns it."""
    from realtime.util.atomic_files import atomic_path
    from training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    if ckpt.model_config.arch != "df" or not ckpt.model_config.prior:
        raise BaseError(f"{ckpt.path}: a base must be a reference-prior df model (this is {ckpt.model_config.preset})")
    run = ckpt.run_config
    meta = {"name": name, "steps": ckpt.step, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "cpu_hours": round(float(ckpt.extra.get("cpu_seconds", 0.0)) / 3600, 2),
            "batch_size": run.get("batch_size"), "lr": run.get("lr"),
            "training_data": run.get("training_data", []), **metadata}
    payload = {"format": FORMAT, "version": VERSION, "model_config": ckpt.model_config.to_dict(),
               "face_type": run["face_type"], "crop_scale": run.get("crop_scale", 1.0),
               "state": {k: v.half() if v.is_floating_point() else v for k, v in ckpt.model_state.items()},
               "recipe": recipe.to_dict(), "metadata": meta}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        torch.save(payload, tmp)
    return load_base(out)


def set_recipe(path: str | Path, changes: dict) -> Base:
    """Rewrite a base file (atomically) with its fine-tuning recipe updated by ``changes`` (Recipe fields);
    weights and metadata are kept as they are. Returns the base as written."""
    from realtime.util.atomic_files import atomic_path

    base = load_base(path)
    recipe = Recipe(**{**base.recipe.to_dict(), **changes})
    parse_parts(recipe.train_parts)
    data = torch.load(base.path, map_location="cpu", weights_only=True)
    data["recipe"] = recipe.to_dict()
    with atomic_path(base.path) as tmp:
        torch.save(data, tmp)
    return load_base(base.path)


def main(argv: list[str] | None = None) -> int:
    """``python -m training.base export RUN --out FILE --meta META.json`` | ``show FILE`` | ``recipe FILE --set JSON``."""
    parser = argparse.ArgumentParser(prog="python -m training.base", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="write a pretraining run's model as a base file (fp16)")
    exp.add_argument("run", type=Path, help="the pretraining run folder (or its checkpoint.pt)")
    exp.add_argument("--out", type=Path, required=True, help="the base file to write, e.g. models/base/base.pt")
    exp.add_argument("--name", default="swapcam-base", help="the base's name, recorded in every model made from it")
    exp.add_argument("--meta", type=Path, default=None,
                     help="JSON of further metadata: credits, left_out, cpu_hours, licence notes")
    exp.add_argument("--recipe", default=None, help="JSON of the fine-tuning recipe (training.base.Recipe fields)")
    show = sub.add_parser("show", help="print a base file's description and metadata")
    show.add_argument("file", type=Path)
    rec = sub.add_parser("recipe", help="change the fine-tuning recipe stored in a base file (weights kept)")
    rec.add_argument("file", type=Path)
    rec.add_argument("--set", required=True, help='JSON of the Recipe fields to change, e.g. {"train_parts": "decoder_src.pyramid"}')
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            meta = json.loads(args.meta.read_text()) if args.meta else {}
            recipe = Recipe(**json.loads(args.recipe)) if args.recipe else Recipe()
            base = save_base(args.run, args.out, name=args.name, recipe=recipe, metadata=meta)
        elif args.command == "recipe":
            base = set_recipe(args.file, json.loads(args.set))
            print(json.dumps(base.recipe.to_dict()))
        else:
            base = load_base(args.file)
            print(json.dumps({**base.metadata, "recipe": base.recipe.to_dict()}, indent=1)[:4000])
    except (BaseError, OSError, ValueError, TypeError) as exc:
        print(f"training.base: error: {exc}", file=sys.stderr)
        return 2
    print(base.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
