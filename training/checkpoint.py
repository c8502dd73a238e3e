"""Training checkpoints: written atomically (temp file + os.replace), read with weights_only=True.

A checkpoint holds the model config, the run config, the step, the model/optimiser (and GAN) state
and the RNG states, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from training.model import FaceSwapModel, ModelConfig

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = "swapcam-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, or does not fit the run asked for."""


@dataclass
class Checkpoint:
    """A loaded checkpoint."""

    path: Path
    model_config: ModelConfig
    run_config: dict
    step: int
    model_state: dict
    optimizer_state: dict | None = None
    extra: dict = field(default_factory=dict)

    def build_model(self) -> FaceSwapModel:
        model = FaceSwapModel(self.model_config)
        model.load_state_dict(self.model_state)
        return model.eval()


def rng_state() -> dict:
    """Python, numpy and torch RNG states in types torch.load(weights_only=True) accepts."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write ``payload`` to ``path`` via a temp file in the same folder and os.replace: a kill at
    any moment leaves either the previous checkpoint or the new one, never a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save({"format": FORMAT, "version": VERSION, **payload}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint file or a run folder holding one; CheckpointError says what is wrong."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for torn or foreign files
        raise CheckpointError(f"{path} is not a readable swapcam checkpoint ({type(exc).__name__}: {exc}); "
                              "it may be truncated or corrupt — restore a copy or start a new run folder") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a swapcam checkpoint (no format={FORMAT!r} field)")
    try:
        cfg = ModelConfig(**data["model_config"]).validate()
        return Checkpoint(path=path, model_config=cfg, run_config=dict(data["run_config"]), step=int(data["step"]),
                          model_state=data["model"], optimizer_state=data.get("optimizer"),
                          extra={k: v for k, v in data.items() if k not in ("model", "optimizer")})
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: incomplete checkpoint ({type(exc).__name__}: {exc})") from exc
