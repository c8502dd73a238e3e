"""Per-frame quality measures of a swap, as small pure functions over frames and landmarks.

Attribute preservation (does the output keep the input's head pose and expression?) and temporal
stability (does the output flicker where the input does not?). Landmarks are 68-point arrays in
frame pixels (realtime.face.landmarks); frames are BGR uint8.
"""

from __future__ import annotations

import cv2
import numpy as np

from realtime.face.alignment import eye_centres, umeyama_similarity

# 68-point indices that carry expression (brows, nose, eyes, mouth); the jaw contour is left out
# because it follows face shape, which a swap is meant to change.
EXPRESSION_POINTS = np.arange(17, 68)


def inter_ocular(landmarks68: np.ndarray) -> float:
    """Distance between the two eye centres in pixels (the normaliser for landmark errors)."""
    right, left = eye_centres(landmarks68)
    return float(np.linalg.norm(left - right))


def pose_error(pose_in: tuple[float, float, float], pose_out: tuple[float, float, float]) -> np.ndarray:
    """(3,) absolute yaw, pitch, roll differences in degrees (roll wrapped to [-180, 180))."""
    d = np.abs(np.asarray(pose_out, np.float64) - np.asarray(pose_in, np.float64))
    return np.minimum(d, 360.0 - d)


def expression_error(lmk_in: np.ndarray, lmk_out: np.ndarray) -> float:
    """Mean distance between the expression points of input and output after the best similarity
    transform (rigid pose + scale) maps the output's onto the input's, divided by the input's
    inter-ocular distance. 0 when the two faces make the same expression in any pose."""
    src = np.asarray(lmk_out, np.float64)[EXPRESSION_POINTS, :2]
    dst = np.asarray(lmk_in, np.float64)[EXPRESSION_POINTS, :2]
    m = umeyama_similarity(src, dst)
    moved = src @ m[:, :2].T + m[:, 2]
    return float(np.linalg.norm(moved - dst, axis=1).mean() / max(inter_ocular(lmk_in), 1e-6))


def landmark_step(prev: np.ndarray, cur: np.ndarray) -> float:
    """Mean frame-to-frame displacement of the expression points, in inter-ocular distances."""
    a = np.asarray(prev, np.float64)[EXPRESSION_POINTS, :2]
    b = np.asarray(cur, np.float64)[EXPRESSION_POINTS, :2]
    return float(np.linalg.norm(b - a, axis=1).mean() / max(inter_ocular(cur), 1e-6))


def face_box(shape: tuple[int, ...], landmarks68: np.ndarray, grow: float = 0.15) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (clipped to the frame) of the landmarks' box grown by ``grow`` of its size
    on each side."""
    h, w = shape[:2]
    pts = np.asarray(landmarks68, np.float64)[:, :2]
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    gx, gy = (x1 - x0) * grow, (y1 - y0) * grow
    return max(0, int(x0 - gx)), max(0, int(y0 - gy)), min(w, int(np.ceil(x1 + gx))), min(h, int(np.ceil(y1 + gy)))


def face_box_mask(shape: tuple[int, ...], landmarks68: np.ndarray, grow: float = 0.15) -> np.ndarray:
    """(H, W) bool mask of ``face_box``."""
    x0, y0, x1, y1 = face_box(shape, landmarks68, grow)
    mask = np.zeros(shape[:2], bool)
    mask[y0:y1, x0:x1] = True
    return mask


class FlowWarper:
    """Optical flow between consecutive INPUT frames (OpenCV's DIS), used to warp any frame pair.

    ``prepare(prev_in, cur_in, landmarks68)`` computes, on a crop around the face (flow over the
    whole frame would cost 4-10x more for pixels no swap touches), the backward flow (cur -> prev)
    and a validity mask: forward-backward consistent pixels (not occluded) inside the face box.
    ``warp_error(prev, cur)`` then gives the mean absolute difference between ``cur`` and ``prev``
    warped onto it by that flow, so the same flow judges input and output alike.
    """

    def __init__(self, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, context: float = 0.5, grow: float = 0.15) -> None:
        self._dis = cv2.DISOpticalFlow_create(preset)
        self._context, self._grow = context, grow
        self._crop: tuple[slice, slice] | None = None
        self._map: np.ndarray | None = None
        self._valid: np.ndarray | None = None
        self.motion: float = float("nan")

    def prepare(self, prev_in: np.ndarray, cur_in: np.ndarray, landmarks68: np.ndarray) -> None:
        x0, y0, x1, y1 = face_box(cur_in.shape, landmarks68, self._context)
        self._crop = (slice(y0, y1), slice(x0, x1))
        g0 = cv2.cvtColor(np.ascontiguousarray(prev_in[self._crop]), cv2.COLOR_BGR2GRAY)
        g1 = cv2.cvtColor(np.ascontiguousarray(cur_in[self._crop]), cv2.COLOR_BGR2GRAY)
        back = self._dis.calc(g1, g0, None)  # cur pixel x came from prev pixel x + back(x)
        fwd = self._dis.calc(g0, g1, None)
        h, w = g1.shape
        grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), -1)
        self._map = grid + back
        fwd_at = cv2.remap(fwd, self._map[..., 0], self._map[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        round_trip = ((back + fwd_at) ** 2).sum(-1)
        bound = 0.01 * ((back**2).sum(-1) + (fwd_at**2).sum(-1)) + 0.5  # Sundaram et al.'s occlusion test
        inside = (self._map[..., 0] >= 0) & (self._map[..., 0] <= w - 1) & (self._map[..., 1] >= 0) & (self._map[..., 1] <= h - 1)
        fx0, fy0, fx1, fy1 = face_box(cur_in.shape, landmarks68, self._grow)
        region = np.zeros((h, w), bool)
        region[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0] = True
        self._valid = (round_trip < bound) & inside & region
        self.motion = float(np.median(np.linalg.norm(back, axis=-1)[region]))

    def warp_error(self, prev: np.ndarray, cur: np.ndarray) -> float:
        """Mean |cur - warp(prev)| over the valid face pixels (BGR, in [0, 1] units)."""
        if self._map is None or self._valid is None or self._crop is None:
            raise RuntimeError("call prepare() with the input frames first")
        p, c = np.ascontiguousarray(prev[self._crop]), cur[self._crop]
        warped = cv2.remap(p, self._map[..., 0], self._map[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if not self._valid.any():
            return float("nan")
        diff = np.abs(c.astype(np.float32) - warped.astype(np.float32)).mean(-1) / 255.0
        return float(diff[self._valid].mean())


def still_runs(motion: np.ndarray, threshold: float = 0.35, min_length: int = 5) -> np.ndarray:
    """(N,) bool: frames inside runs of at least ``min_length`` consecutive frames whose input
    motion (median flow magnitude over the face, pixels) is below ``threshold``."""
    still = np.asarray(motion, np.float64) < threshold
    out = np.zeros_like(still)
    start = None
    for i, s in enumerate(np.append(still, False)):
        if s and start is None:
            start = i
        elif not s and start is not None:
            if i - start >= min_length:
                out[start:i] = True
            start = None
    return out
