"""Faceset quality: sharpness, drop blurry / small / near-duplicate faces, a contact sheet to review.

Sharpness is the variance of the Laplacian over the face (landmark hull) of the aligned crop, so
background texture does not count and every face is measured at the faceset's resolution.
Near-duplicates are faces whose aligned landmarks AND small grey thumbnails are both within a
threshold of a face already kept (the pose/expression and the appearance are the same): a still
head over many video frames collapses to a few faces. (A photo moved rigidly in front of a camera
is a duplicate too: alignment removes the movement.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime.face.alignment import hull_mask
from realtime.util.atomic_files import write_image
from training.faceset import FaceRecord, Faceset

THUMB = 16  # side of the grey thumbnail used to compare appearance


def sharpness(aligned_bgr: np.ndarray, aligned_landmarks68: np.ndarray | None = None) -> float:
    """Variance of the Laplacian of the aligned face, inside the landmark hull when landmarks are given."""
    gray = cv2.cvtColor(aligned_bgr, cv2.COLOR_BGR2GRAY) if aligned_bgr.ndim == 3 else aligned_bgr
    lap = cv2.Laplacian(gray, cv2.CV_64F, ksize=3)
    if aligned_landmarks68 is not None:
        inside = hull_mask(aligned_landmarks68, gray.shape[0]) > 0.5
        if inside.sum() > 16:
            return float(lap[inside].var())
    return float(lap.var())


def thumbnail(aligned_bgr: np.ndarray) -> np.ndarray:
    """(THUMB*THUMB,) float32 grey thumbnail, zero mean and unit norm (brightness/contrast invariant)."""
    gray = cv2.cvtColor(aligned_bgr, cv2.COLOR_BGR2GRAY) if aligned_bgr.ndim == 3 else aligned_bgr
    small = cv2.resize(gray, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    small -= small.mean()
    return small / (np.linalg.norm(small) + 1e-6)


@dataclass(frozen=True)
class DedupeThresholds:
    """Two faces are near-duplicates when both distances are below these.

    landmarks: the largest distance between matching aligned landmarks, as a fraction of the
    resolution (the largest, not the mean, so a mouth that opened is not averaged away).
    appearance: 1 - correlation of the normalised grey thumbnails.
    Defaults measured here: consecutive faces of a still head differ by ~0.004 / ~0.0003; faces
    5 frames apart of a person talking (grid_s1) by ~0.011 / ~0.002 (medians).
    """

    landmarks: float = 0.006
    appearance: float = 0.003


def near_duplicates(faceset: Faceset, thresholds: DedupeThresholds = DedupeThresholds()) -> list[FaceRecord]:
    """Faces of ``faceset`` that nearly repeat an earlier kept face (manifest order); the first stays."""
    records = faceset.records
    if not records:
        return []
    res = float(faceset.resolution)
    lmk = np.stack([r.aligned_points().ravel() / res for r in records]).astype(np.float32)
    thumbs = np.stack([thumbnail(faceset.load_image(r)) for r in records])
    kept: list[int] = []
    dupes: list[FaceRecord] = []
    for i in range(len(records)):
        if kept:
            k = np.asarray(kept)
            d_lmk = np.linalg.norm((lmk[k] - lmk[i]).reshape(len(k), -1, 2), axis=2).max(1)
            close = k[d_lmk < thresholds.landmarks]
            if close.size and (1.0 - thumbs[close] @ thumbs[i]).min() < thresholds.appearance:
                dupes.append(records[i])
                continue
        kept.append(i)
    return dupes


def too_blurry(records: list[FaceRecord], min_sharpness: float) -> list[FaceRecord]:
    """Faces whose sharpness (Laplacian variance) is below ``min_sharpness``."""
    return [r for r in records if r.sharpness < min_sharpness]


def too_small(records: list[FaceRecord], min_face_size: float) -> list[FaceRecord]:
    """Faces smaller than ``min_face_size`` source pixels."""
    return [r for r in records if r.face_size < min_face_size]


def _label(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.4) -> None:
    """White text on whatever is under it (callers darken the strip first)."""
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def contact_sheet(faceset: Faceset, path: str | Path, *, max_faces: int = 96, columns: int = 12, thumb: int = 96) -> Path:
    """Write a PNG grid of (up to ``max_faces``, evenly sampled) faces with sharpness and yaw under each,
    and a header of faceset statistics; returns the path written."""
    records = faceset.records
    path = Path(path)
    picks = [records[round(i)] for i in np.linspace(0, len(records) - 1, min(max_faces, len(records)))] if records else []
    rows = max(1, math.ceil(len(picks) / columns))
    header = 64
    sheet = np.full((header + rows * thumb, columns * thumb, 3), 40, np.uint8)
    for n, rec in enumerate(picks):
        y, x = header + (n // columns) * thumb, (n % columns) * thumb
        sheet[y : y + thumb, x : x + thumb] = cv2.resize(faceset.load_image(rec), (thumb, thumb), interpolation=cv2.INTER_AREA)
        strip = sheet[y + thumb - 14 : y + thumb, x : x + thumb]
        strip[:] = strip // 3
        _label(sheet, f"s{rec.sharpness:.0f} yaw{rec.yaw:+.0f}", (x + 2, y + thumb - 4), 0.32)
    sharp = np.array([r.sharpness for r in records]) if records else np.zeros(1)
    yaw = np.array([r.yaw for r in records]) if records else np.zeros(1)
    sources = len({r.source for r in records})
    _label(sheet, f"{faceset.path.name}: {len(records)} faces from {sources} source(s), "
           f"{faceset.face_type} {faceset.resolution}px, showing {len(picks)}", (6, 22), 0.5)
    _label(sheet, f"sharpness min/median/max {sharp.min():.0f}/{np.median(sharp):.0f}/{sharp.max():.0f}   "
           f"yaw {yaw.min():+.0f}..{yaw.max():+.0f} deg", (6, 48), 0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_image(path, sheet)
