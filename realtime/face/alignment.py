"""Face alignment shared by extraction, training and the live loop (DESIGN.md contract 2).

A face is aligned by a similarity transform (Umeyama) from 33 of its 68-point-scheme landmarks to
DeepFaceLab's canonical mean-face template (unit square), followed by the face type's padding. The
resulting 2x3 matrix maps frame pixels to aligned pixels of an R x R crop.

Constants taken as facts from DeepFaceLab's published alignment: the 33-point template
(``landmarks_2D_new``), the padding of each face type, the vertical offsets of whole_face and head,
and head's yaw-dependent horizontal offset (facelib/LandmarksProcessor.py, ``get_transform_mat`` and
``estimate_averaged_yaw``, DeepFaceLab commit 46fc239, 2023).

``crop_scale`` multiplies the crop's side (1 = DeepFaceLab's crop of that face type; 0.92 is 8 %
tighter): it lets a model trained on another tool's crops be fed the crop it knows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from realtime.face.mesh68 import MESH_TO_68

# DeepFaceLab's mean face in unit-square coordinates, for 68-point indices 17..48 and 54
# (eyebrows, nose, eyes, the two mouth corners).
TEMPLATE_33 = np.array(
    [
        [0.000213256, 0.106454], [0.0752622, 0.038915], [0.18113, 0.0187482], [0.29077, 0.0344891],
        [0.393397, 0.0773906], [0.586856, 0.0773906], [0.689483, 0.0344891], [0.799124, 0.0187482],
        [0.904991, 0.038915], [0.98004, 0.106454], [0.490127, 0.203352], [0.490127, 0.307009],
        [0.490127, 0.409805], [0.490127, 0.515625], [0.36688, 0.587326], [0.426036, 0.609345],
        [0.490127, 0.628106], [0.554217, 0.609345], [0.613373, 0.587326], [0.121737, 0.216423],
        [0.187122, 0.178758], [0.265825, 0.179852], [0.334606, 0.231733], [0.260918, 0.245099],
        [0.182743, 0.244077], [0.645647, 0.231733], [0.714428, 0.179852], [0.793132, 0.178758],
        [0.858516, 0.216423], [0.79751, 0.244077], [0.719335, 0.245099], [0.254149, 0.780233],
        [0.726104, 0.780233],
    ],
    dtype=np.float64,
)
TEMPLATE_INDICES_68 = np.r_[17:49, 54]

# face type -> (padding, upward shift of the crop centre), both in template units.
FACE_TYPES: dict[str, tuple[float, float]] = {
    "half": (0.0, 0.0),
    "mid_full": (0.0675, 0.0),
    "full": (0.2109375, 0.0),
    "whole_face": (0.40, 0.07),
    "head": (0.70, 0.50),
}

# crop_scale values accepted (a crop of a tenth or ten times the face type's is a mistake, not a setting)
CROP_SCALE_RANGE = (0.5, 2.0)

# 68-point index ranges of the parts used for masks and measurements.
JAW = np.arange(0, 17)
RIGHT_BROW, LEFT_BROW = np.arange(17, 22), np.arange(22, 27)
NOSE = np.arange(27, 36)
RIGHT_EYE, LEFT_EYE = np.arange(36, 42), np.arange(42, 48)
MOUTH_OUTER = np.arange(48, 60)


def check_face_type(face_type: str) -> str:
    """Return ``face_type`` if known, else raise a ValueError listing the valid ones."""
    if face_type not in FACE_TYPES:
        raise ValueError(f"unknown face type {face_type!r}; choose one of {', '.join(FACE_TYPES)}")
    return face_type


def mesh_to_68(mesh_points: np.ndarray) -> np.ndarray:
    """(478|468, D) MediaPipe mesh points -> (68, D) points in the 68-point (iBUG) scheme."""
    if mesh_points.shape[0] < 468:
        raise ValueError(f"expected MediaPipe mesh points (468 or 478), got {mesh_points.shape[0]}")
    return mesh_points[MESH_TO_68]


def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, shift) mapping src onto dst.

    Umeyama (1991), closed form. src, dst: (N, 2). Returns the 2x3 matrix.
    Written out here (a dozen lines) rather than taken from scikit-image, whose estimator API
    changed across releases, to keep the live path free of that dependency.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rot = u @ np.diag(sign) @ vt
    var_s = (s0**2).sum() / len(src)
    if var_s <= 1e-12:
        raise ValueError("degenerate landmarks: all points coincide")
    scale = (sig * sign).sum() / var_s
    mat = np.empty((2, 3))
    mat[:, :2] = scale * rot
    mat[:, 2] = mu_d - mat[:, :2] @ mu_s
    return mat


def check_crop_scale(crop_scale: float) -> float:
    """Return ``crop_scale`` as a float if it is a usable crop side multiplier, else raise ValueError."""
    value = float(crop_scale)
    if not (CROP_SCALE_RANGE[0] <= value <= CROP_SCALE_RANGE[1]):
        raise ValueError(f"crop scale {crop_scale} is outside {CROP_SCALE_RANGE[0]}..{CROP_SCALE_RANGE[1]} "
                         "(1 = DeepFaceLab's crop of the face type; below 1 tighter, above 1 looser)")
    return value


def crop_square(face_type: str, crop_scale: float = 1.0, x_shift: float = 0.0) -> tuple[float, float, float]:
    """The aligned crop in template units: (centre x, centre y, side).

    ``x_shift`` moves the centre horizontally (template units; head's yaw offset, ``head_yaw_shift``).
    """
    padding, shift = FACE_TYPES[check_face_type(face_type)]
    side = (1.0 + 2.0 * np.sqrt(2.0) * padding) * check_crop_scale(crop_scale)
    return 0.5 + x_shift, 0.5 - shift, side


def template_to_aligned(face_type: str, size: int, crop_scale: float = 1.0, x_shift: float = 0.0) -> np.ndarray:
    """2x3 matrix: template units -> aligned pixels of a size x size crop."""
    cx, cy, side = crop_square(face_type, crop_scale, x_shift)
    k = size / side
    return np.array([[k, 0.0, size / 2 - k * cx], [0.0, k, size / 2 - k * cy]])


def averaged_yaw(template_landmarks68: np.ndarray) -> float:
    """DeepFaceLab's yaw estimate from 68-point landmarks in template units (``estimate_averaged_yaw``):
    the mean horizontal width of the face right of the nose ridge (points 27-29 to jaw points 16-14)
    minus that left of it (jaw points 0-2 to 27-29). 0 for a frontal face; > 0 when the nose has moved
    toward the image's left (the face turned to its own right), < 0 the other way."""
    x = np.asarray(template_landmarks68, np.float64)[:, 0]
    nose = x[[27, 28, 29]]
    left = float(np.mean(nose - x[[0, 1, 2]]))
    right = float(np.mean(x[[16, 15, 14]] - nose))
    return right - left


def head_yaw_shift(yaw: float) -> float:
    """Horizontal shift of the head crop's centre in template units for ``averaged_yaw`` ``yaw``:
    DeepFaceLab's ``yaw * |tanh(2 yaw)| / 2`` (the tanh damps it to almost nothing near frontal), so the
    crop follows the back of a turned head instead of cutting it off."""
    return yaw * abs(math.tanh(2.0 * yaw)) / 2.0


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """2x3 matrices: the transform ``outer(inner(p))``."""
    lin = outer[:, :2] @ inner[:, :2]
    return np.hstack([lin, (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def invert(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 matrix to (N, 2) points."""
    pts = np.asarray(points, np.float64)[:, :2]
    return pts @ matrix[:, :2].T + matrix[:, 2]


def align_matrix(landmarks68: np.ndarray, size: int, face_type: str = "whole_face", crop_scale: float = 1.0) -> np.ndarray:
    """2x3 matrix mapping frame pixels to a size x size aligned crop of the given face type.

    head follows DeepFaceLab in moving the crop sideways with the head's yaw (``head_yaw_shift``).
    """
    check_face_type(face_type)
    to_template = umeyama_similarity(np.asarray(landmarks68)[TEMPLATE_INDICES_68, :2], TEMPLATE_33)
    x_shift = 0.0
    if face_type == "head":
        x_shift = head_yaw_shift(averaged_yaw(transform_points(landmarks68, to_template)))
    return compose(template_to_aligned(face_type, size, crop_scale, x_shift), to_template)


def template_points(face_type: str, size: int, crop_scale: float = 1.0) -> np.ndarray:
    """The 33 template points in aligned pixels (where aligned landmarks of a frontal face land)."""
    return transform_points(TEMPLATE_33, template_to_aligned(face_type, size, crop_scale))


def template_eye_centres(face_type: str, size: int, crop_scale: float = 1.0) -> np.ndarray:
    """(2, 2): right then left eye centre of the template, in aligned pixels."""
    pts = template_points(face_type, size, crop_scale)
    eye_rows = TEMPLATE_INDICES_68
    right = pts[np.isin(eye_rows, RIGHT_EYE)].mean(0)
    left = pts[np.isin(eye_rows, LEFT_EYE)].mean(0)
    return np.stack([right, left])


def eye_centres(landmarks68: np.ndarray) -> np.ndarray:
    """(2, 2): right then left eye centre of 68-point landmarks."""
    pts = np.asarray(landmarks68)[:, :2]
    return np.stack([pts[RIGHT_EYE].mean(0), pts[LEFT_EYE].mean(0)])


def warp_to_aligned(frame: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Cut the size x size aligned face out of ``frame`` (only the crop's pixels are computed)."""
    return cv2.warpAffine(
        frame, np.asarray(matrix, np.float64), (size, size), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


@dataclass(frozen=True)
class Roi:
    """A pixel rectangle of a frame: [x0, x1) x [y0, y1)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0

    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)


def aligned_roi(matrix: np.ndarray, size: int | tuple[int, int], frame_shape: tuple[int, ...]) -> Roi:
    """The frame rectangle covered by the aligned crop (side ``size``, or ``(width, height)``), clipped to the frame."""
    cw, ch = (size, size) if np.isscalar(size) else size
    corners = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], np.float64)
    back = transform_points(corners, invert(matrix))
    h, w = frame_shape[:2]
    x0, y0 = np.floor(back.min(0)).astype(int)
    x1, y1 = np.ceil(back.max(0)).astype(int) + 1
    return Roi(max(0, x0), max(0, y0), min(w, x1), min(h, y1))


def warp_from_aligned(
    aligned: np.ndarray, matrix: np.ndarray, frame_shape: tuple[int, ...], interpolation: int = cv2.INTER_LINEAR
) -> tuple[np.ndarray, Roi]:
    """Inverse warp of an aligned image (R x R, or any h x w part of aligned space with ``matrix`` mapping
    frame pixels to its pixels), computed only on the frame ROI it covers.

    Returns the warped ROI image and the ROI. Pixels outside the crop are 0. ``interpolation``: an
    OpenCV flag (bicubic: the one-photo swap of grid_s26 kept 0.78 of the input face's Laplacian variance
    instead of 0.64 with bilinear).
    """
    roi = aligned_roi(matrix, (aligned.shape[1], aligned.shape[0]), frame_shape)
    if roi.empty:
        return aligned[:0, :0], roi
    shift = np.array([[1.0, 0.0, -roi.x0], [0.0, 1.0, -roi.y0]])
    to_roi = compose(shift, invert(matrix))
    out = cv2.warpAffine(
        aligned, to_roi, (roi.x1 - roi.x0, roi.y1 - roi.y0), flags=interpolation,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )
    return out, roi


def resize_box(image: np.ndarray, size: int, box: tuple[slice, slice]) -> np.ndarray:
    """The pixels inside ``box`` ((rows, cols) slices) of ``cv2.resize(image, (size, size))`` with bilinear
    interpolation, computed for the box only: output pixel p reads input (p + 0.5) * n / size - 0.5,
    edges clamped, as cv2.resize does. image: (n, n[, C]) float32, enlarged (n <= size)."""
    k = image.shape[0] / size
    y, x = box[0].start or 0, box[1].start or 0
    to_image = np.array([[k, 0.0, (x + 0.5) * k - 0.5], [0.0, k, (y + 0.5) * k - 0.5]])
    out_size = (min(box[1].stop, size) - x, min(box[0].stop, size) - y)
    return cv2.warpAffine(image, to_image, out_size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def _fill_polygons(size: int, polygons: list[np.ndarray]) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    for poly in polygons:
        hull = cv2.convexHull(np.round(poly[:, :2]).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_AA)
    return mask.astype(np.float32) / 255.0


def hull_mask(aligned_landmarks68: np.ndarray, size: int) -> np.ndarray:
    """(size, size) float32 mask in [0, 1]: the convex hull of the face's 68 landmarks,
    extended upward to cover the forehead (brows mirrored about the eye line)."""
    pts = np.asarray(aligned_landmarks68, np.float64)[:, :2]
    brows = pts[17:27]
    eye_line_y = pts[36:48, 1].mean()
    forehead = brows.copy()
    forehead[:, 1] = brows[:, 1] - 0.6 * (eye_line_y - brows[:, 1]).clip(min=0) - 0.08 * size
    return _fill_polygons(size, [np.vstack([pts[:27], forehead])])


def eyes_mouth_mask(aligned_landmarks68: np.ndarray, size: int) -> np.ndarray:
    """(size, size) float32 mask of the eyes (with brows) and the mouth: the regions a
    trainer weights more (DeepFaceLab's eyes/mouth priority)."""
    pts = np.asarray(aligned_landmarks68, np.float64)[:, :2]
    mask = _fill_polygons(size, [pts[np.r_[RIGHT_EYE, RIGHT_BROW]], pts[np.r_[LEFT_EYE, LEFT_BROW]],
                                 pts[MOUTH_OUTER]])
    grow = max(1, size // 32) * 2 + 1
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow)))


@dataclass(frozen=True)
class AlignedFace:
    """One face cut out of a frame: the crop, its matrix and its landmarks in both spaces."""

    image: np.ndarray
    matrix: np.ndarray
    face_type: str
    landmarks68: np.ndarray
    aligned_landmarks68: np.ndarray

    @property
    def size(self) -> int:
        return int(self.image.shape[0])


def align_face(
    frame: np.ndarray, landmarks68: np.ndarray, size: int, face_type: str = "whole_face", crop_scale: float = 1.0
) -> AlignedFace:
    """Align one face of ``frame`` given its 68-point landmarks (frame pixels)."""
    matrix = align_matrix(landmarks68, size, face_type, crop_scale)
    return AlignedFace(
        image=warp_to_aligned(frame, matrix, size),
        matrix=matrix,
        face_type=face_type,
        landmarks68=np.asarray(landmarks68, np.float32)[:, :2],
        aligned_landmarks68=transform_points(landmarks68, matrix).astype(np.float32),
    )
