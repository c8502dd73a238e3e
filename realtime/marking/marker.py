"""Every output frame says it is synthetic: a visible corner label and the invisible watermark.

``OutputMarker`` is the pipeline's ``marker``: called on each frame before any sink sees it (virtual
camera, window, file, stills), it draws the label (unless ``label=False``: ``--no-label``) and then
embeds the watermark (always) whose payload names the model or photo in use (``fingerprint``), so a
recording or a screenshot of the call can be traced to what made it (``swapcam verify``).

``provenance(swapper)`` is the one adapter between swappers and this module: the path, identity,
consent record and fingerprint of an ONNX ``FaceSwapper`` (its ``info``) or of any swapper exposing
``path``, ``identity`` and ``consent`` (the photo swapper).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from realtime.marking.watermark import FINGERPRINT_BYTES, Payload, Watermarker

LABEL_TEXT = "AI-altered video (swapcam)"
LABEL_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _file_sha256(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").digest()


@lru_cache(maxsize=32)
def fingerprint(path: str | Path) -> bytes:
    """The first FINGERPRINT_BYTES of the SHA-256 of a model or photo file.

    For a folder (several photos, a model with its side files): SHA-256 over the sorted list of
    ``relative/path\\0<sha256 of the file>\\n`` lines of every file in it, recursively.
    """
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{item.relative_to(path).as_posix()}\0{_file_sha256(item).hex()}\n".encode())
        return digest.digest()[:FINGERPRINT_BYTES]
    return _file_sha256(path)[:FINGERPRINT_BYTES]


@dataclass(frozen=True)
class Provenance:
    """Who a swapper shows and on what basis; None where the file does not say."""

    path: Path | None
    identity: str | None
    consent: str | None
    fingerprint: bytes

    def missing(self) -> list[str]:
        """What a person should know is not recorded: 'identity', 'consent record'."""
        return [name for name, value in (("identity", self.identity), ("consent record", self.consent))
                if not value or value.strip().lower() in ("", "not stated")]

    def describe(self) -> str:
        what = self.path.name if self.path else "model"
        return (f"{what}: identity {self.identity or '(not recorded)'}; consent: {self.consent or '(not recorded)'}; "
                f"watermark fingerprint {self.fingerprint.hex()}")


def provenance(swapper) -> Provenance:
    """The provenance of an ONNX ``FaceSwapper`` (metadata in ``swapper.info``) or of any swapper with
    ``path``, ``identity`` and ``consent`` attributes (a photo swapper: identity and consent None)."""
    info = getattr(swapper, "info", None)
    if info is not None and hasattr(info, "metadata"):
        path = Path(info.path)
        identity, consent = info.metadata.get("swapcam.identity"), info.metadata.get("swapcam.consent")
    else:
        path = Path(swapper.path) if getattr(swapper, "path", None) is not None else None
        identity, consent = getattr(swapper, "identity", None), getattr(swapper, "consent", None)
    fp = fingerprint(str(path)) if path is not None and path.exists() else bytes(FINGERPRINT_BYTES)
    return Provenance(path, identity, consent, fp)


class Label:
    """A small badge with ``text`` in the bottom-right corner, white on a darkened box.

    Sized from the frame height (text ~1/40 of it, at least ~10 px) so it stays legible after a call
    app scales the video down; placed away from the HUD, the bench's latency stamp and the
    side-by-side captions (all top-left). The text mask is made once per frame size; each frame costs
    a shift and a max over a few thousand pixels.
    """

    def __init__(self, text: str = LABEL_TEXT) -> None:
        self.text = text
        self._shape: tuple[int, ...] | None = None
        self._box: tuple[int, int, int, int] = (0, 0, 0, 0)
        self._ink: np.ndarray | None = None

    def box(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the badge on a frame of ``shape``."""
        if shape != self._shape:
            self._prepare(shape)
        return self._box

    def _prepare(self, shape: tuple[int, ...]) -> None:
        h, w = shape[:2]
        scale = max(0.35, h / 900)
        thickness = 1 if h < 900 else 2
        (tw, th), base = cv2.getTextSize(self.text, LABEL_FONT, scale, thickness)
        pad = max(3, th // 3)
        bw, bh = min(w, tw + 2 * pad), min(h, th + base + 2 * pad)
        margin = max(2, h // 90)
        x0, y0 = max(0, w - bw - margin), max(0, h - bh - margin)
        ink = np.zeros((bh, bw), np.uint8)
        cv2.putText(ink, self.text, (pad, pad + th), LABEL_FONT, scale, 255, thickness, cv2.LINE_AA)
        if len(shape) == 3:
            ink = np.repeat(ink[:, :, None], shape[2], axis=2)
        self._shape, self._box, self._ink = tuple(shape), (x0, y0, x0 + bw, y0 + bh), ink

    def draw(self, frame: np.ndarray) -> np.ndarray:
        """Draw the badge on ``frame`` (H, W, 3) uint8 in place; returns it."""
        x0, y0, x1, y1 = self.box(frame.shape)
        roi = frame[y0:y1, x0:x1]
        np.right_shift(roi, 2, out=roi)  # darken the box to a quarter
        np.maximum(roi, self._ink, out=roi)
        return frame


class OutputMarker:
    """The pipeline's marker: label (optional) then watermark, in place, on every frame.

    ``source`` gives the fingerprint of what is being shown now: bytes, or a callable returning
    bytes (checked every frame, so switching models re-marks from the next frame on). The payload's
    UTC hour is renewed when the hour turns. ``clock`` returns seconds since the epoch (tests).
    """

    def __init__(self, source: bytes | Callable[[], bytes], *, label: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self._source = source if callable(source) else (lambda: source)
        self.label = Label() if label else None
        self._clock = clock
        self._key: tuple[bytes, int] | None = None
        self._watermarker: Watermarker | None = None

    @classmethod
    def for_swappers(cls, current: Callable[[], object], *, label: bool = True) -> OutputMarker:
        """A marker whose fingerprint follows ``current()`` (e.g. ``lambda: processor.swapper``)."""
        known: dict[int, bytes] = {}  # id(swapper) -> fingerprint: hashed once per swapper

        def now() -> bytes:
            swapper = current()
            if id(swapper) not in known:
                known[id(swapper)] = provenance(swapper).fingerprint
            return known[id(swapper)]

        return cls(now, label=label)

    def set_label(self, on: bool) -> None:
        """Draw the visible label from the next frame on (True) or not (False); the watermark stays either way."""
        if on and self.label is None:
            self.label = Label()
        elif not on:
            self.label = None

    @property
    def payload(self) -> Payload | None:
        return self._watermarker.payload if self._watermarker else None

    def _watermarker_now(self) -> Watermarker:
        key = (self._source(), int(self._clock() // 3600))
        if key != self._key:
            import datetime as dt

            when = dt.datetime.fromtimestamp(key[1] * 3600, dt.timezone.utc)
            self._watermarker, self._key = Watermarker(Payload.now(key[0], when)), key
        return self._watermarker

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Mark ``frame`` (H, W, 3) uint8 in place (a non-contiguous frame is copied first); returns it."""
        if not frame.flags.c_contiguous:
            frame = np.ascontiguousarray(frame)
        label = self.label  # read once: a front-end may switch it from another thread (``set_label``)
        if label is not None:
            label.draw(frame)
        return self._watermarker_now().embed(frame)
