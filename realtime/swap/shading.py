"""Seam-aware colour for the one-photo swap: the user's skin tone and lighting, the photo's detail.

``ShadingMatch.apply(face, user, skin)`` multiplies the warped photo ``face`` by the ratio of the two
faces' low frequencies, each measured on bare skin only (normalised convolution: eyes, brows, lips,
a moustache and hair left out, so they do not bleed into the skin around them). The swapped face then
carries the user's shading and skin tone everywhere, not only on average, so its edge meets the
user's skin without a seam and a face lit from one side stays lit from that side; the photo's detail
(pores, the shape of eyes and nose) is above the cut-off and stays. Works on a small copy (about
8 / sigma pixels wide: 32 px for the default cut-off of a quarter of the face crop).

Image = reflectance x shading is the usual model behind this; the ratio is taken in BGR [0, 1].
"""

from __future__ import annotations

import cv2
import numpy as np

from realtime.face.alignment import resize_box
from realtime.face.regions import face_region, features
from realtime.face.smoothing import Ema


TONE_MODELS = ("ratio", "light", "blend")


def planar_fit(log_ratio: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n, n, C) the weighted least-squares plane a + b x + c y through each channel of ``log_ratio``
    (n, n, C) under ``weights`` (n, n): the light's direction and strength across the face, no relief."""
    n = log_ratio.shape[0]
    c = np.linspace(-1.0, 1.0, n, dtype=np.float64)
    xs, ys = np.meshgrid(c, c)
    basis = np.stack([np.ones_like(xs), xs, ys], -1).reshape(-1, 3)
    w = weights.reshape(-1).astype(np.float64)
    lhs = basis.T @ (basis * w[:, None]) + 1e-6 * np.eye(3)
    coef = np.linalg.solve(lhs, basis.T @ (log_ratio.reshape(-1, log_ratio.shape[-1]) * w[:, None]))
    return (basis @ coef).reshape(n, n, -1).astype(np.float32)


class ShadingMatch:
    """Low-frequency ratio transfer at aligned size ``size``; ``sigma`` is the cut-off (Gaussian sigma) as a
    fraction of it. A small sigma (0.06) also carries the user's facial shading, and with it some of the
    user's identity (measured: dlib distance to the target 0.50 instead of 0.45 on grid_s26); 0.25
    carries skin tone and the direction of the light only.

    model: 'ratio' (the low-frequency ratio as it is), 'light' (only a plane through its logarithm: the
    light's direction and the overall tone, none of the user's facial relief), 'blend' (the geometric
    mean of the two)."""

    def __init__(self, size: int, sigma: float = 0.25, smoothing: float = 0.3, model: str = "ratio") -> None:
        if model not in TONE_MODELS:
            raise ValueError(f"tone model must be one of {', '.join(TONE_MODELS)}, got {model!r}")
        self.model = model
        self.size = int(size)
        # the low-frequency ratio per face, smoothed over frames (EMA rate; 1 = off): measured per frame
        # it wavers with the landmarks and the image noise, which showed as flicker (GRID s26 warp-error
        # ratio 1.13 unsmoothed, 1.08 at 0.3); the light still takes effect within a few frames
        self._smooth = Ema(smoothing)
        # the cut-off is broad: a copy about 8 / sigma pixels wide holds everything below it
        self.small = int(np.clip(round(8.0 / max(sigma, 1e-3)), 16, self.size))
        self.sigma = max(0.5, sigma * self.small)
        self._ratio = np.empty((self.size, self.size, 3), np.float32)

    def skin(self, points: np.ndarray, usable: np.ndarray, forehead: float) -> np.ndarray:
        """(small, small) weights of bare skin: the face oval below the forehead cut, without eyes, brows
        and lips, times ``usable`` ((R, R): where both faces show skin: no hair, no mouth opening, the
        photo's region)."""
        pts = np.asarray(points, np.float32)[:, :2] * np.float32(self.small / self.size)
        w = face_region(pts, self.small, forehead)
        w *= cv2.resize(usable, (self.small, self.small), interpolation=cv2.INTER_AREA)
        w[features(pts, self.small, 0.02 * self.small).astype(bool)] = 0.0
        return w

    def ratio(self, face: np.ndarray, user_u8: np.ndarray, points: np.ndarray, usable: np.ndarray,
              forehead: float, key=None) -> np.ndarray:
        """(R, R, 3) float32 per-pixel factor that moves ``face`` (BGR, float32 [0,1] or uint8) to the user's
        shading.

        user_u8: the user's aligned crop (R, R, 3) uint8; points: the user's mesh in aligned pixels;
        usable, forehead: see ``skin``; key: which face this is (the ratio is smoothed over the calls
        with the same key; None: not smoothed).
        """
        small = self._small_ratio(face, user_u8, points, usable, forehead, key)
        cv2.resize(small, (self.size, self.size), dst=self._ratio, interpolation=cv2.INTER_LINEAR)
        return self._ratio

    def _small_ratio(self, face: np.ndarray, user_u8: np.ndarray, points: np.ndarray, usable: np.ndarray,
                     forehead: float, key=None) -> np.ndarray:
        """``ratio`` at the small size (small, small, 3), before enlarging."""
        n = (self.small, self.small)
        f = cv2.resize(face, n, interpolation=cv2.INTER_AREA)
        u = cv2.resize(user_u8, n, interpolation=cv2.INTER_AREA)
        if f.dtype != np.uint8:  # a float face in [0, 1]: to the user's 0..255 scale
            f = f * np.float32(255.0)
        both = np.concatenate([f, u], -1).astype(np.float32)  # (small, small, 6): face BGR, user BGR
        both *= np.float32(1.0 / 255.0)
        w = self.skin(points, usable, forehead)
        if w.sum() < 4:
            return np.ones((self.small, self.small, 3), np.float32)
        # skin that does not match (a moustache, a beard, a shadow, glasses) is left out: pixels whose
        # brightness ratio is far from the typical one over the skin
        log_ratio = np.log((both[..., 3:].mean(-1) + 0.02) / (both[..., :3].mean(-1) + 0.02))
        on = w > 0.5
        if on.sum() >= 8:
            median = float(np.median(log_ratio[on]))
            spread = float(np.median(np.abs(log_ratio[on] - median))) + 0.05
            w *= np.abs(log_ratio - median) < 2.5 * spread
        # normalised convolution of both faces under the skin weights, in one blur of six channels
        weighted = both * w[..., None]
        low = cv2.GaussianBlur(weighted, (0, 0), self.sigma, borderType=cv2.BORDER_CONSTANT)
        den = cv2.GaussianBlur(w, (0, 0), self.sigma, borderType=cv2.BORDER_CONSTANT)
        # where skin is far away, fall back to the ratio of the two faces' mean skin colours
        sums = weighted.sum((0, 1))
        mean_ratio = (sums[3:] + 1e-3) / (sums[:3] + 1e-3)
        local = (low[..., 3:] + 1e-3) / (low[..., :3] + 1e-3)
        trust = np.clip(den / 0.2, 0.0, 1.0)[..., None]
        r = mean_ratio + (local - mean_ratio) * trust
        np.clip(r, 0.2, 5.0, out=r)
        if self.model != "ratio":
            log_r = np.log(r)
            plane = planar_fit(log_r, w)
            r = np.exp(plane if self.model == "light" else 0.5 * (plane + log_r))
        if key is not None:
            r = self._smooth(key, r)
        return r

    def forget(self, keys) -> None:
        """Drop the smoothed ratio of faces not in ``keys``."""
        self._smooth.keep_only(keys)

    def apply(self, face: np.ndarray, user_u8: np.ndarray, points: np.ndarray, usable: np.ndarray,
              forehead: float, box: tuple[slice, slice] | None = None, key=None) -> np.ndarray:
        """``face`` (BGR, float32 [0,1] or uint8; modified in place, only inside ``box``, (rows, cols)
        slices, when given) with the user's shading; returns it. key: see ``ratio``."""
        if box is None:
            target, ratio = face, self.ratio(face, user_u8, points, usable, forehead, key)
        else:
            small = self._small_ratio(face, user_u8, points, usable, forehead, key)
            target, ratio = face[box], resize_box(small, self.size, box)
        if face.dtype == np.uint8:
            cv2.multiply(target, ratio, dst=target, dtype=cv2.CV_8U)  # rounds and saturates
        else:
            target *= ratio
            np.clip(target, 0.0, 1.0, out=target)
        return face
