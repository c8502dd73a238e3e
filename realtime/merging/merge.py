"""Merge a swapped face back into the frame, working on the face's region (ROI) only.

In the aligned crop (R x R): mask = product of the model's masks (optionally x the landmark hull),
optionally smoothed over time, then made opaque (thresholded at ``MergeSettings.threshold``: a soft
model mask would otherwise blend the two faces at partial opacity, a ghosted double exposure), eroded
(or dilated) and feathered at its border only (the blur), all in aligned-face pixels. Everything after
that works on the mask's bounding box only (a face oval covers about half of a crop, and a 720p face
is enlarged about 2x into the frame): the swapped face gets the colour statistics of the original
face (none / rct / lct / mkl via ``realtime.merging.color_transfer``, statistics optionally smoothed over
time) and optional sharpening; then face and mask are warped back onto the frame ROI the box covers
(``warp_from_aligned``) and blended with the opacity. Pixels where the warped mask is 0 are left
exactly as they were.

``keep`` (optional, (R, R) in aligned pixels, [0, 1]) says where the user's own pixels must stay on top
whatever the swap draws (1 = the user's, 0 = the swap may paint): the occlusion stage's mask of hands,
glasses and objects (``realtime.merging.occlusion``), or any other region a caller wants kept. It multiplies
the finished merge mask (after smoothing, threshold, erosion and feathering, so it is neither delayed by
the mask's temporal smoothing nor softened further) and so also keeps those pixels out of the colour
statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realtime.merging import color_transfer as ct
from realtime.face.alignment import hull_mask, warp_from_aligned
from realtime.face.smoothing import Ema

MASK_MODES = ("both", "face", "celeb", "none")


@dataclass
class MergeSettings:
    """How a swapped face is merged. Sizes are in pixels of the aligned face (the model's resolution).

    mask: which model masks to multiply ('both' = out_face_mask x out_celeb_face_mask);
    hull: also multiply by the 68-landmark hull; threshold: where the (smoothed) mask is at least this,
    the face is opaque, elsewhere the frame shows (0 keeps the soft mask as it is: ghosting where it
    is partial); erode: >0 shrinks, <0 grows the mask; blur: feather radius, the width of the only
    partly transparent band; color: none/rct/lct/mkl; opacity: 0..1; sharpen: unsharp amount (0 = off).
    """

    mask: str = "both"
    hull: bool = False
    threshold: float = 0.5
    erode: int = 1
    blur: int = 4
    color: str = "rct"
    opacity: float = 1.0
    sharpen: float = 0.0

    def validate(self) -> MergeSettings:
        if self.mask not in MASK_MODES:
            raise ValueError(f"unknown mask mode {self.mask!r}; choose one of {', '.join(MASK_MODES)}")
        ct.check_mode(self.color)
        if not 0.0 <= self.opacity <= 1.0:
            raise ValueError(f"opacity must be in [0, 1], got {self.opacity}")
        if self.blur < 0 or self.sharpen < 0:
            raise ValueError("blur and sharpen must be >= 0")
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"mask threshold must be in [0, 1), got {self.threshold}")
        return self


def _kernel(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


class Merger:
    """Merges faces with one ``MergeSettings``; keeps per-face temporal state for mask and colour smoothing.

    mask_smoothing / color_smoothing: EMA rates in (0, 1] (1 = off).
    """

    def __init__(self, settings: MergeSettings | None = None, *, mask_smoothing: float = 0.5,
                 color_smoothing: float = 0.2) -> None:
        self.settings = (settings or MergeSettings()).validate()
        self.mask_ema = Ema(mask_smoothing)
        self.color_ema = Ema(color_smoothing)
        self._kernels: dict[int, np.ndarray] = {}

    def forget(self, face_ids) -> None:
        """Drop temporal state of faces not in ``face_ids``."""
        keep = set(face_ids)
        self.mask_ema.keep_only({k for k in self.mask_ema._values if k[0] in keep})
        self.color_ema.keep_only({k for k in self.color_ema._values if k[0] in keep})

    def mask(self, face_id: int, face_mask: np.ndarray, celeb_mask: np.ndarray,
             aligned_landmarks68: np.ndarray | None, keep: np.ndarray | None = None) -> np.ndarray:
        """(R, R) float32 merge mask in [0, 1] in aligned coordinates; zero where ``keep`` is 1."""
        s = self.settings
        r = face_mask.shape[0]
        if s.mask == "both":
            m = face_mask * celeb_mask
        elif s.mask == "face":
            m = face_mask.copy()
        elif s.mask == "celeb":
            m = celeb_mask.copy()
        else:
            m = np.ones((r, r), np.float32)
        if s.hull and aligned_landmarks68 is not None:
            m *= hull_mask(aligned_landmarks68, r)
        m = self.mask_ema((face_id, "mask"), m)
        if s.threshold > 0:
            # opaque inside, nothing outside: smoothing before the threshold keeps the edge steady over time
            m = (m >= s.threshold).astype(np.float32)
        if s.erode:
            k = self._kernels.setdefault(abs(s.erode), _kernel(abs(s.erode)))
            m = cv2.erode(m, k, borderType=cv2.BORDER_CONSTANT, borderValue=0) if s.erode > 0 else cv2.dilate(m, k)
        else:
            m = m.copy()
        # The crop's edge is always feathered to 0 so no square seam can show.
        edge = max(1, s.blur)
        m[:edge], m[-edge:], m[:, :edge], m[:, -edge:] = 0, 0, 0, 0
        if s.blur:
            m = cv2.GaussianBlur(m, (2 * s.blur + 1, 2 * s.blur + 1), s.blur / 2.0, borderType=cv2.BORDER_CONSTANT)
        np.clip(m, 0.0, 1.0, out=m)
        if keep is not None:
            m *= 1.0 - keep
        return m

    def colour(self, face_id: int, swapped_u8: np.ndarray, original_u8: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The swapped face (uint8 BGR) with the original face's colour statistics (a new array, or
        ``swapped_u8`` itself for mode 'none'). All three arrays cover the same pixels (the crop or a box of
        it). Worked in 8-bit colour codes (``color_transfer.apply_transfer_u8``): table conversions instead
        of float L*a*b*, about 5x faster for a 720p face."""
        mode = self.settings.color
        if mode == "none":
            return swapped_u8
        space = ct.space_for(mode)
        # Statistics on every second pixel: a quarter of the work, the same means and covariances.
        weights = (mask[::2, ::2] > 0.5).astype(np.float32)
        src = self.color_ema((face_id, "src", mode), ct.color_stats_u8(swapped_u8[::2, ::2], weights, space))
        ref = self.color_ema((face_id, "ref", mode), ct.color_stats_u8(original_u8[::2, ::2], weights, space))
        return ct.apply_transfer_u8(swapped_u8, src, ref, mode)

    def merge(self, frame: np.ndarray, face_id: int, aligned_original: np.ndarray, matrix: np.ndarray,
              face: np.ndarray, face_mask: np.ndarray, celeb_mask: np.ndarray,
              aligned_landmarks68: np.ndarray | None = None, opacity: float = 1.0,
              keep: np.ndarray | None = None) -> tuple[np.ndarray, tuple]:
        """Blend one swapped face into ``frame`` (BGR uint8, modified in place).

        aligned_original: (R, R, 3) uint8 crop the model saw; matrix: its 2x3 frame->aligned matrix;
        face: (R, R, 3) swapped face, float32 [0, 1] or uint8; face_mask, celeb_mask: (R, R) float32;
        keep: (R, R) float32 in [0, 1], where the user's pixels stay (see the module docstring), or None.
        Returns the warped mask on the ROI (float32) and the ROI slices, for inspection.
        """
        m = self.mask(face_id, face_mask, celeb_mask, aligned_landmarks68, keep)
        box = mask_box(m, pad=BOX_PAD)
        if box is None:
            return np.zeros((0, 0), np.float32), (slice(0, 0), slice(0, 0))
        x0, y0, x1, y1 = box
        inside = (slice(y0, y1), slice(x0, x1))
        face_u8 = face[inside] if face.dtype == np.uint8 else cv2.convertScaleAbs(face[inside], alpha=255.0)
        face_u8 = self.colour(face_id, face_u8, aligned_original[inside], m[inside])
        if self.settings.sharpen > 0:
            blurred = cv2.GaussianBlur(face_u8, (0, 0), 1.0)
            face_u8 = cv2.addWeighted(face_u8, 1 + self.settings.sharpen, blurred, -self.settings.sharpen, 0)
        alpha = m[inside] * np.float32(self.settings.opacity * opacity)
        # frame pixels -> pixels of the box
        to_box = np.asarray(matrix, np.float64) - np.array([[0.0, 0.0, x0], [0.0, 0.0, y0]])
        # The face's last resampling: bicubic where the crop is shrunk into the frame (bilinear would
        # average detail away, and the frame region is small), bilinear where it is enlarged (bicubic
        # adds little there and costs most: measured +2.3 ms for a 330 px face in 720p). The mask: bilinear.
        shrinks = abs(np.linalg.det(to_box[:, :2])) >= 1.0
        warped, roi = warp_from_aligned(face_u8, to_box, frame.shape, cv2.INTER_CUBIC if shrinks else cv2.INTER_LINEAR)
        if roi.empty:  # the face's box lies outside the frame: nothing to blend
            return np.zeros((0, 0), np.float32), (slice(0, 0), slice(0, 0))
        weight, _ = warp_from_aligned(alpha, to_box, frame.shape)
        sl = roi.slices()
        region = frame[sl]
        # (w1*face + w2*frame) / (w1 + w2), rounded: exactly the frame where the mask is 0.
        cv2.blendLinear(warped, region, weight, 1.0 - weight, dst=region)
        return weight, sl


# The box is padded by the reach of bicubic interpolation (2 px): every frame pixel whose mask weight is
# above 0 then samples face pixels of the box only, so the result equals a warp of the whole crop.
BOX_PAD = 2


def mask_box(mask: np.ndarray, pad: int = 0) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) bounding box of the mask's non-zero pixels grown by ``pad`` (within the mask), with
    x0 and y0 even (so every-second-pixel statistics sample the same pixels as on the whole crop);
    None when the mask is empty."""
    x, y, w, h = cv2.boundingRect((mask > 0).view(np.uint8))
    if w == 0 or h == 0:
        return None
    rows, cols = mask.shape[:2]
    x0, y0 = max(0, x - pad) & ~1, max(0, y - pad) & ~1
    return x0, y0, min(cols, x + w + pad), min(rows, y + h + pad)
