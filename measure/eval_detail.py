"""Detail measures of a swap that blur cannot game: sharpness and ghosting, per frame.

Both look at the face *interior*: the convex hull of the input's 68 landmarks eroded by 10 % of the
face width, so the merge's blend seam (where some softness is expected) is left out.

- ``sharpness_ratio``: variance of the Laplacian of the output's grey level over that of the input,
  on the interior. 1 = as sharp as the input; a blurred face scores near 0.
- ``ghosting``: the share of the interior that the merge left partly transparent (blend weight
  strictly between 0.05 and 0.95), where the input face shows through the swapped one: a double
  exposure. It is read from the merge itself (``swapcam eval --model`` swaps with the live
  processor and keeps each frame's blend weights), because from pixels alone a half-transparent
  face cannot be told reliably from a clean swap onto the same landmarks: both keep the input's
  structure (eyes, mouth and brows in the same places). A region the merge leaves fully to the
  input (weight 0, e.g. the user's own mouth interior in the one-photo swap) is not ghosting.
"""

from __future__ import annotations

import cv2
import numpy as np

INTERIOR_ERODE = 0.10  # of the face width
PARTIAL = (0.05, 0.95)  # blend weights strictly between these are "partly transparent"


def face_interior(shape: tuple[int, ...], landmarks68: np.ndarray, erode: float = INTERIOR_ERODE) -> np.ndarray:
    """(H, W) bool: convex hull of the 68 landmarks (frame pixels), eroded by ``erode`` x face width."""
    pts = np.asarray(landmarks68, np.float64)[:, :2]
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(pts).astype(np.int32)), 1)
    radius = int(round(erode * float(np.ptp(pts[:, 0]))))
    if radius > 0:
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    return mask.astype(bool)


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image


def sharpness_ratio(inp: np.ndarray, out: np.ndarray, interior: np.ndarray) -> float:
    """var(Laplacian(out)) / var(Laplacian(inp)) over ``interior`` (NaN when the input has no detail)."""
    if not interior.any():
        return float("nan")
    lap_in = cv2.Laplacian(_grey(inp), cv2.CV_32F)[interior]
    lap_out = cv2.Laplacian(_grey(out), cv2.CV_32F)[interior]
    v_in = float(lap_in.var())
    return float(lap_out.var()) / v_in if v_in > 1e-6 else float("nan")


def ghosting(blend_weight: np.ndarray, interior: np.ndarray) -> float:
    """Share of ``interior`` where the merge's blend weight (H, W) float in [0, 1] is partial (NaN if no
    interior, or no swap at all in this frame)."""
    if not interior.any() or float(blend_weight.max(initial=0.0)) <= 0.0:
        return float("nan")
    w = blend_weight[interior]
    return float(((w > PARTIAL[0]) & (w < PARTIAL[1])).mean())
