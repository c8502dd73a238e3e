"""Atomic file writes: a temp file in the same folder, renamed over the target only when complete.

A reader (or a crash) never sees half a file: it sees the old file or the new one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path`` (same suffix, so writers pick the same format); on
    success it replaces ``path``, on error it is removed and ``path`` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_image(path: str | Path, image: np.ndarray, params: list[int] | None = None) -> Path:
    """Write an image with OpenCV atomically; the format follows the suffix. Raises OSError."""
    with atomic_path(path) as tmp:
        try:
            written = cv2.imwrite(str(tmp), image, params or [])
        except cv2.error as exc:  # e.g. no encoder for the suffix
            raise OSError(f"could not write image {path}: {exc}") from exc
        if not written:
            raise OSError(f"could not write image {path}")
    return Path(path)
