"""The gallery of targets: the models and photos a person can switch to, with who they show and on what consent.

``scan_targets(folders)`` lists, without loading any model session or landmarker:
  - trained models (``.onnx`` / ``.dfm``) in each folder and its direct subfolders, with the identity and
    consent their metadata records (``read_model_info``; a file that breaks the model contract is listed
    with its one-line error instead; swapcam's own helper models, such as the occlusion model, are not
    listed unless given as ``extra``);
  - photos and short videos of a target (the one-photo swap) directly in a folder given with ``photos=True``
    (and its direct subfolders that hold photos: a folder of photos of one person), with the identity and
    consent of their sidecar record (``PHOTO.json``, ``reference.json`` in a folder).
``thumbnail(entry)`` gives a small BGR picture of each: the photo, the model's own reference face where its
metadata carries one (reference-prior models), else None.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime.frames.sources import IMAGE_SUFFIXES
from realtime.swap.reference import VIDEO_SUFFIXES, ReferenceError, sidecar_record
from realtime.swap.swappers import MODEL_SUFFIXES

THUMB_SIDE = 96  # pixels


@dataclass(frozen=True)
class TargetEntry:
    """One target in the gallery. kind: 'model' or 'photo' (a photo, a folder of photos or a video);
    identity / consent: as recorded (None where nothing is); error: why it cannot be used (None when it can)."""

    path: Path
    kind: str
    identity: str | None = None
    consent: str | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def as_dict(self) -> dict:
        return {"path": str(self.path), "name": self.name, "kind": self.kind, "identity": self.identity,
                "consent": self.consent, "error": self.error}


def describe_entry(path: str | Path) -> TargetEntry:
    """The gallery entry of one path (a model, a photo, a folder of photos or a video); never raises.
    kind: 'model', 'photo', 'helper' (one of swapcam's own helper models, with why it is no target) or 'unknown'."""
    from realtime.swap.model_contract import ModelContractError, NotAFaceModelError, read_model_info
    from realtime.swap.swappers import swapper_kind

    path = Path(path).absolute()
    try:
        kind = swapper_kind(path)
    except ModelContractError as exc:
        return TargetEntry(path, "unknown", error=str(exc))
    if kind == "model":
        try:
            meta = read_model_info(path).metadata
        except NotAFaceModelError as exc:
            return TargetEntry(path, "helper", error=str(exc))
        except ModelContractError as exc:
            return TargetEntry(path, kind, error=str(exc))
        return TargetEntry(path, kind, meta.get("swapcam.identity") or None, meta.get("swapcam.consent") or None)
    if not path.exists():
        return TargetEntry(path, kind, error=f"photo not found: {path}")
    try:
        record = sidecar_record(path)
    except ReferenceError as exc:
        return TargetEntry(path, kind, error=str(exc))
    return TargetEntry(path, kind, record.get("identity"), record.get("consent"))


def _photo_folder(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir() if p.is_file())


def candidate_paths(folder: Path, *, photos: bool) -> list[Path]:
    """The paths in ``folder`` that the gallery lists (see the module docstring), in name order."""
    if not folder.is_dir():
        return []
    found: list[Path] = []
    for item in sorted(folder.iterdir()):
        suffix = item.suffix.lower()
        if item.is_file() and suffix in MODEL_SUFFIXES:
            found.append(item)
        elif item.is_file() and photos and (suffix in IMAGE_SUFFIXES or suffix in VIDEO_SUFFIXES):
            found.append(item)
        elif item.is_dir() and not item.name.startswith("."):
            found += sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)
            if photos and _photo_folder(item):
                found.append(item)
    return found


def scan_targets(folders: list[tuple[Path, bool]], extra: list[Path] = ()) -> list[TargetEntry]:
    """Every target in ``folders`` ((folder, photos) pairs) and the ``extra`` paths (e.g. dropped ones), once each."""
    seen: set[Path] = set()
    entries = []
    found = [p for folder, photos in folders for p in candidate_paths(Path(folder), photos=photos)]
    asked = {Path(p).resolve() for p in extra}
    for path in found + list(extra):
        key = Path(path).resolve()
        if key in seen:
            continue
        seen.add(key)
        entry = describe_entry(path)
        if entry.kind != "helper" or key in asked:
            entries.append(entry)
    return entries


def _square(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = min(h, w)
    crop = image[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)


def thumbnail(entry: TargetEntry, side: int = THUMB_SIDE) -> np.ndarray | None:
    """A (side, side, 3) BGR picture of the target, or None where there is none to show."""
    path = entry.path
    image = None
    try:
        if entry.kind == "model" and entry.error is None:
            from realtime.swap.model_contract import read_model_info

            png = read_model_info(path).metadata.get("swapcam.prior_reference_png")
            if png:
                image = cv2.imdecode(np.frombuffer(base64.b64decode(png), np.uint8), cv2.IMREAD_COLOR)
        elif entry.kind == "photo":
            first = path
            if path.is_dir():
                first = next((p for p in sorted(path.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES), None)
            if first is not None and first.suffix.lower() in VIDEO_SUFFIXES:
                cap = cv2.VideoCapture(str(first))
                ok, image = cap.read()
                cap.release()
                image = image if ok else None
            elif first is not None:
                image = cv2.imread(str(first), cv2.IMREAD_COLOR)
    except (OSError, ValueError, cv2.error):
        image = None
    return None if image is None or image.size == 0 else _square(image, side)
