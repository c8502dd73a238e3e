"""Temporal smoothing for the live loop: causal (no look-ahead) and adaptive.

- ``OneEuroFilter``: Casiez, Roussel & Vogel (2012), "1 Euro filter". A low-pass filter whose cutoff
  rises with speed: strong smoothing when still (no shake), little when moving (no lag). Written out
  here (about 30 lines) because it is short and no installed library ships it.
- ``LandmarkSmoother``: one One Euro filter per face id over its points in frame pixels (the live
  loop smooths the whole 478-point mesh and takes the 68 landmarks from it), with the speed measured
  in face sizes per second so the same settings suit near and far faces.
- ``Ema``: exponential moving average for masks and colour statistics.
- ``FaceHold``: when a face is lost, keep its last points a few frames, then fade to the original.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass with ``cutoff`` Hz at sample interval ``dt`` s."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro filter over an array of values (any shape), one cutoff per element.

    min_cutoff (Hz): smoothing at rest (lower = steadier, more lag); beta: how fast the cutoff rises
    with speed (higher = less lag when moving); d_cutoff (Hz): smoothing of the speed estimate.
    ``scale`` divides the speed (e.g. the face size in pixels, making beta unit-free).
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def reset(self) -> None:
        self._x = self._dx = self._t = None

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None or self._t is None or self._x.shape != x.shape:  # first sample: take it as is
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        if dt <= 0:  # same timestamp twice (or clock went back): treat as 1 ms apart
            dt = 1e-3
        dx = (x - self._x) / dt / max(scale, 1e-9)
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x.copy()


class LandmarkSmoother:
    """One Euro filters per face id over (K, 2) points in frame pixels (68 landmarks or the whole mesh:
    the filter works per coordinate, so the 68 landmarks of a smoothed mesh are the smoothed 68 landmarks).

    The speed that opens the filter is in face sizes per second; ``beta`` per that unit. Defaults
    (min_cutoff 1.0 Hz, beta 20) were tuned on the test videos (a 210 px face, 25 fps): on a still
    face the frame-to-frame shake drops about 6x (0.16 -> 0.026 px); on a moving head the smoothed
    landmarks stay within about 1-2.5 px of the raw ones (vs 2-5 px at beta 8).
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 20.0, d_cutoff: float = 1.0, enabled: bool = True) -> None:
        self.min_cutoff, self.beta, self.d_cutoff, self.enabled = min_cutoff, beta, d_cutoff, enabled
        self._filters: dict[int, OneEuroFilter] = {}

    def __call__(self, face_id: int, points: np.ndarray, t: float, face_size: float) -> np.ndarray:
        if not self.enabled:
            return np.asarray(points, np.float64)
        filt = self._filters.get(face_id)
        if filt is None:
            filt = self._filters[face_id] = OneEuroFilter(self.min_cutoff, self.beta, self.d_cutoff)
        return filt(points, t, scale=face_size)

    def keep_only(self, face_ids) -> None:
        """Forget faces not in ``face_ids`` (they left; a returning face starts fresh)."""
        keep = set(face_ids)
        for fid in list(self._filters):
            if fid not in keep:
                del self._filters[fid]


class Ema:
    """Exponential moving average per key: ``value = prev + rate * (new - prev)``; rate 1 = off.

    Works on arrays and on objects with ``lerp(other, t)`` (colour statistics).
    """

    def __init__(self, rate: float = 0.3, enabled: bool = True) -> None:
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"smoothing rate must be in (0, 1], got {rate}")
        self.rate, self.enabled = rate, enabled
        self._values: dict = {}

    def __call__(self, key, value):
        if not self.enabled or self.rate >= 1.0:
            return value
        prev = self._values.get(key)
        if prev is None or (isinstance(value, np.ndarray) and prev.shape != value.shape):
            new = value.copy() if isinstance(value, np.ndarray) else value
        elif hasattr(prev, "lerp"):
            new = prev.lerp(value, self.rate)
        else:
            new = prev + self.rate * (value - prev)
        self._values[key] = new
        return new

    def keep_only(self, keys) -> None:
        keep = set(keys)
        for k in list(self._values):
            if k not in keep:
                del self._values[k]


@dataclass
class _Track:
    points: np.ndarray
    size: float
    missing: int = 0


class FaceHold:
    """Face-loss handling: a face that disappears keeps its last points for ``hold`` frames at full
    strength, then fades to the original frame over ``fade`` frames, then is dropped.

    ``update(present)`` takes {face_id: (points, size)} of this frame (points: the mesh or 68 landmarks)
    and returns [(face_id, points, size, opacity)] for every face to draw (present ones at opacity 1).
    """

    def __init__(self, hold: int = 3, fade: int = 6) -> None:
        self.hold, self.fade = max(0, hold), max(0, fade)
        self._tracks: dict[int, _Track] = {}

    def update(self, present: dict[int, tuple[np.ndarray, float]]) -> list[tuple[int, np.ndarray, float, float]]:
        out = []
        for fid, (lmk, size) in present.items():
            self._tracks[fid] = _Track(lmk, size)
            out.append((fid, lmk, size, 1.0))
        for fid in list(self._tracks):
            if fid in present:
                continue
            track = self._tracks[fid]
            track.missing += 1
            if track.missing <= self.hold:
                opacity = 1.0
            elif track.missing <= self.hold + self.fade:
                opacity = 1.0 - (track.missing - self.hold) / (self.fade + 1)
            else:
                del self._tracks[fid]
                continue
            out.append((fid, track.points, track.size, opacity))
        return out

    @property
    def face_ids(self) -> list[int]:
        return list(self._tracks)
