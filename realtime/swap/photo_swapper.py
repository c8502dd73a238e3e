"""The one-photo swap: the target's photo warped onto the user's face mesh, no training, no network.

``PhotoSwapper(path)`` picks the reference face (``realtime.swap.reference``), and builds once:
the dense piecewise-affine warp of its mesh (``realtime.swap.mesh_warp``), the photo cropped to the face
with the swappable region as its alpha channel (the face oval cut below the hairline, minus any
hair hanging into the forehead). Per frame, ``get(crops, meshes)`` makes for each user face one map
(a sparse product and a few remaps of a small field), samples the photo with ONE ``cv2.remap``
(colour and alpha together), and draws the user-side mask (face oval below the hairline, minus the
mouth opening, so the user's own teeth and tongue show). It returns a ``SwapResult`` in aligned
space like an ONNX model, so the processor's merge, colour transfer, smoothing and fade apply as they are.

Interface shared with ``realtime.swap.swapper.FaceSwapper``: ``name``, ``path``, ``identity``, ``consent``,
``resolution``, ``face_type``, ``describe()``, ``prepare()``, ``get()``; ``needs_mesh = True`` tells the
processor to pass the user's mesh in aligned pixels.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from realtime.face.alignment import align_matrix, check_face_type, compose, invert, mesh_to_68, transform_points
from realtime.face.regions import (extend_beyond, face_region, hair_over_forehead, interior_weights, mouth_hole,
                                   not_skin_past_outline)
from realtime.merging.merge import mask_box
from realtime.swap.mesh_warp import MeshWarp
from realtime.swap.reference import Reference, describe_reference, load_reference
from realtime.swap.shading import ShadingMatch
from realtime.swap.swapper import SwapResult

MESH_POINTS = 468  # the face mesh proper; the 10 iris points are left out of the warp (the live loop's eye
# pass-through, realtime.face.eyes, shows the user's own eyeballs between the warped lids)
# The aligned crop's side by default: the photo's own pixels across the crop (no finer: more pixels would
# only interpolate it), rounded to 8 and held between these. The shipped London photo covers the crop with
# 223 px: at 224 instead of 256 px a quarter fewer pixels per frame, and on GRID s26 (first 100 frames)
# the same identity and flicker, sharpness 0.97 instead of 0.99, the user's teeth as exact.
MIN_AUTO_RESOLUTION, MAX_AUTO_RESOLUTION = 224, 256
DEFAULT_FACE_TYPE = "full"
# A residual of the inverse map above this (aligned pixels) marks pixels where the warp folds over
# (strong head turns): they are left to the user's own face.
MAX_RESIDUAL = 1.5
# ... over an area at least this wide on the warp's grid (5 cells: 10 aligned pixels at step 2); smaller
# specks are left to the photo (see PhotoSwapper._hide_folds).
FOLD_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
# The mouth opening is drawn this fraction of R inside the inner lips: the merge's erosion and feather
# (a few aligned pixels) then put the transition on the opening's edge instead of on the user's lips.
MOUTH_SHRINK = 0.015
# The photo is sampled at no more than 1 / MIN_SAMPLING of its pixels per aligned pixel; a finer photo
# is shrunk (area average) once, so the per-frame remap never skips pixels (no aliasing, no shimmer).
MIN_SAMPLING = 0.75
# The photo is sampled (and coloured) on the box of the user's face region only, grown by this many aligned
# pixels: more than the merge's erosion + feather reach, so every pixel the merge blends is filled.
BOX_MARGIN = 8
# The inverse warp of a face starts from its previous frame's answer when no mesh point moved more than this
# fraction of R since (the aligned mesh moves with the expression only): WARM_ITERATIONS steps from there
# converge further than the default iterations from the cold first guess (measured on GRID s26: map error
# p99 0.47 vs 0.74 aligned px against a fully converged map), one remap fewer.
WARM_START_MOVE = 0.03
WARM_ITERATIONS = 3
# The cropped photo is kept this many times larger (bicubic), so the per-frame sampling can be bilinear.
UPSAMPLE = 4
# The user's neutral mesh (for ``proportions``) is a running mean of the aligned mesh: the plain mean of
# the first frames, then an exponential one over about 1 / NEUTRAL_RATE frames (~3 s at 30 fps), so a
# different person in front of the camera is followed within seconds.
NEUTRAL_RATE = 0.01
# The photo's proportions are applied in full up to this head turn away from the photo's pose, and not
# at all beyond NO_SHIFT_DEG (a shift measured on frontal faces misplaces features on a turned one).
FULL_SHIFT_DEG = 8.0
NO_SHIFT_DEG = 20.0
YAW_PER_OFFSET = 30.5  # degrees of yaw per nose-tip offset (in half face widths); see yaw_pitch
PITCH_PER_DROP = 132.0  # degrees of pitch per nose-tip drop (in eye-to-chin heights)
# Where the region grown past the user's outline (``grow``) pastes: 'all' of the band, or only where the user shows
# 'skin' there (not hair framing the face, not background). Issue 22: 'skin' brings GRID s4 (hair beside the
# cheeks) from 0.409 to 0.382 of dlib distance, but GRID s27 from 0.518 to 0.533 (top-1 0.91 -> 0.71), so 'all'.
BAND_CHOICES = ("all", "skin")


def yaw_pitch(points: np.ndarray) -> tuple[float, float]:
    """Rough head yaw and pitch (degrees, up to an offset per face for pitch) from a 2-D mesh in aligned
    pixels: the nose tip's offset from the cheeks' midpoint over half the face's width (yaw), and its
    height between the eye line and the chin (pitch). Scales fitted to MediaPipe's 3-D head pose on
    GRID s26 and helmet_selfie (correlation 0.98 for yaw, 0.86 for pitch)."""
    mid = (points[234] + points[454]) / 2
    half = max(float(np.linalg.norm(points[234] - points[454])) / 2, 1e-6)
    eyes = (points[33, 1] + points[263, 1]) / 2
    drop = max(float(points[152, 1] - eyes), 1e-6)
    return YAW_PER_OFFSET * float(points[4, 0] - mid[0]) / half, PITCH_PER_DROP * float(points[4, 1] - eyes) / drop


def frontal_share(points: np.ndarray, photo: np.ndarray, neutral: np.ndarray) -> float:
    """1 while the user's head (points) is within FULL_SHIFT_DEG of the photo's yaw and of the user's own
    usual pitch (neutral), falling to 0 at NO_SHIFT_DEG."""
    yaw, pitch = yaw_pitch(points)
    turn = max(abs(yaw - yaw_pitch(photo)[0]), abs(pitch - yaw_pitch(neutral)[1]))
    return float(np.clip((NO_SHIFT_DEG - turn) / (NO_SHIFT_DEG - FULL_SHIFT_DEG), 0.0, 1.0))


def auto_resolution(reference: Reference, face_type: str) -> int:
    """The aligned crop side that matches the photo's own pixels across the crop of ``face_type``, rounded
    to 8 and held to [MIN_AUTO_RESOLUTION, MAX_AUTO_RESOLUTION]."""
    to_aligned = align_matrix(mesh_to_68(reference.mesh[:, :2].astype(np.float64)), MAX_AUTO_RESOLUTION, face_type)
    native = MAX_AUTO_RESOLUTION / float(np.sqrt(abs(np.linalg.det(to_aligned[:, :2]))))
    return int(np.clip(8 * round(native / 8), MIN_AUTO_RESOLUTION, MAX_AUTO_RESOLUTION))


def region_box(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """Row and column slices of the bounding box of ``mask`` > 0, grown by ``margin`` pixels (within the
    mask; the merge's ``mask_box``); None when the mask is empty."""
    box = mask_box(mask, pad=margin)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    return slice(y0, y1), slice(x0, x1)


class PhotoSwapper:
    """The one-photo swapper (see the module docstring).

    resolution: side R of the aligned crop (pixels); None: the photo's own resolution, between 224 and 256
    (``auto_resolution``). whole_face at 128 px is far too soft for a 720p webcam face; 'full' at 256 px
    holds a face about 160 px between the ears, as sharp as a webcam face at arm's length and sharper than
    the 360x288 test clips. forehead: how far up the forehead the swap
    reaches, from the brows (0) to the top of the mesh (1, the hairline; hair found by colour below it is
    left out on both faces). grow: the region reaches this fraction of R past the face's outline, so the
    user's own outline does not show as a second contour (the photo's skin is carried past its outline
    to fill it). proportions: how far the inner features (eyes, brows, nose; not the outline, not the
    lips) move from the user's proportions (0) to the photo's (1): each mesh point is shifted by
    proportions x its interior weight x (photo's point - user's neutral point), where the user's neutral
    mesh is a running mean over the frames (NEUTRAL_RATE), so the user's expression still drives the face.
    Off by default: on GRID s26 with a still of s1 it brings the dlib distance from 0.459 to 0.440, but on
    the held-out helmet_selfie clip it costs 0.008 and draws the photo's upper lip tight around a wide
    smile (see the README's figures).
    shading: the shading match's cut-off as a fraction of R (``realtime.swap.shading``; 0: none, the merge's
    colour transfer alone gives the face the user's global L*a*b* mean and spread); tone: its model ('ratio',
    'light', 'blend'); mouth: the user's mouth opening shows through (False: the photo's closed lips are
    stretched over it, as the 2016 recipe does); band: where the region grown past the outline pastes, 'all' of
    it or only where the user shows 'skin' there (hair framing the face and the background stay; BAND_CHOICES).
    step: the warp field is solved on every step-th pixel.
    """

    needs_mesh = True
    providers = ("OpenCV remap (CPU)",)
    crop_scale = 1.0  # the photo's crop is cut like the user's, both DeepFaceLab's crop of the face type

    def __init__(self, path: str | Path, *, resolution: int | None = None, face_type: str = DEFAULT_FACE_TYPE,
                 forehead: float = 0.5, grow: float = 0.02, shading: float = 0.25, proportions: float = 0.0,
                 tone: str = "ratio", mouth: bool = True, band: str = "all", step: int = 2,
                 iterations: int = 4, landmarker=None, reference: Reference | None = None,
                 identity: str | None = None, consent: str | None = None) -> None:
        if resolution is not None and (resolution < 64 or resolution % 2):
            raise ValueError(f"photo swap resolution must be an even number >= 64, got {resolution}")
        self.path = Path(path)
        self._face_type = check_face_type(face_type)
        self.reference = reference if reference is not None else load_reference(self.path, landmarker)
        self._resolution = int(resolution) if resolution is not None else auto_resolution(self.reference, self._face_type)
        self.forehead = float(forehead)
        self.grow = float(grow) * self._resolution
        self._shading = float(shading)
        self._tone = tone
        self.mouth = bool(mouth)
        if band not in BAND_CHOICES:
            raise ValueError(f"band must be one of {', '.join(BAND_CHOICES)}, got {band!r}")
        self.band = band
        self.proportions = float(proportions)
        self.identity = identity or self.reference.identity
        self.consent = consent or self.reference.consent
        self.warmup_ms: float | None = None
        self.interpolation = cv2.INTER_LINEAR  # on the upsampled photo (see _build)
        self._build(step, iterations)
        self._buffers: dict[str, np.ndarray] = {}
        self._neutral: list[np.ndarray | None] = []  # per face of the batch: the user's running-mean mesh
        self._previous: list[tuple[np.ndarray, np.ndarray] | None] = []  # per face: last (mesh, warp grid)
        self._frontal_seen: list[float] = []  # per face: frames (weighted by frontal share) in that mean

    # -- the shared swapper interface ------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def resolution(self) -> int:
        return self._resolution

    @property
    def face_type(self) -> str:
        return self._face_type

    def describe(self) -> str:
        who = f"identity {self.identity!r}" if self.identity else "no identity given"
        consent = f"consent: {self.consent}" if self.consent else "no consent record given"
        return (f"photo {self.path} (one-photo swap, no training; {who}; {consent}; {self.resolution} px "
                f"{self.face_type}); " + describe_reference(self.reference))

    def prepare(self, warmup_runs: int = 2) -> PhotoSwapper:
        """Run the warp on the reference itself so buffers exist before the first frame."""
        crop = self._ref_aligned[None]
        mesh = self._ref_points[None]
        t = time.perf_counter()
        for _ in range(max(1, warmup_runs)):
            self.get(crop, mesh)
        self.warmup_ms = (time.perf_counter() - t) * 1000
        self._neutral, self._previous = [], []  # the warm-up face is not the user's
        if self.shading is not None:
            self.shading.forget([])
        return self

    # -- built once per reference -----------------------------------------------------------------
    def _build(self, step: int, iterations: int) -> None:
        r = self._resolution
        photo = self.reference.image
        pts = self.reference.mesh[:, :2].astype(np.float64)
        to_aligned = align_matrix(mesh_to_68(pts), r, self._face_type)
        scale = float(np.sqrt(abs(np.linalg.det(to_aligned[:, :2]))))  # aligned pixels per photo pixel
        if scale < MIN_SAMPLING:  # a photo much finer than the crop: shrink it first, or the remap aliases
            f = scale / MIN_SAMPLING
            photo = cv2.resize(photo, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            pts = (pts + 0.5) * f - 0.5
            to_aligned = align_matrix(mesh_to_68(pts), r, self._face_type)
        self._ref_points = transform_points(pts[:MESH_POINTS], to_aligned).astype(np.float32)
        self._ref_aligned = cv2.warpAffine(photo, to_aligned, (r, r), flags=cv2.INTER_LINEAR,
                                           borderMode=cv2.BORDER_REPLICATE)
        hair = hair_over_forehead(self._ref_aligned, self._ref_points, self.forehead)
        # the skin carried past the outline comes from well inside it (the oval's edge may hold background)
        inside = cv2.erode(face_region(self._ref_points, r, self.forehead) * (1.0 - hair),
                           cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * max(1, r // 32) + 1,) * 2))
        region = face_region(self._ref_points, r, self.forehead, self.grow) * (1.0 - hair)
        self.reference_region = region  # (R, R) in the reference's aligned space, for inspection
        # The photo, cropped to what the aligned crop covers, with the region as alpha: one remap
        # per frame samples colour and mask together, straight from the photo's own pixels.
        corners = transform_points(np.array([[0, 0], [r, 0], [r, r], [0, r]], np.float64), invert(to_aligned))
        h, w = photo.shape[:2]
        x0, y0 = np.clip(np.floor(corners.min(0)).astype(int) - 2, 0, [w, h])
        x1, y1 = np.clip(np.ceil(corners.max(0)).astype(int) + 2, 0, [w, h])
        shift_in = np.array([[1.0, 0.0, float(x0)], [0.0, 1.0, float(y0)]])
        crop_to_aligned = compose(to_aligned, shift_in)
        size = (int(x1 - x0), int(y1 - y0))
        to_crop = dict(flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
        alpha = cv2.warpAffine(region, crop_to_aligned, size, **to_crop)
        skin = extend_beyond(photo[y0:y1, x0:x1], cv2.warpAffine(inside, crop_to_aligned, size, **to_crop))
        # Stored UPSAMPLED (bicubic, once): a per-frame bilinear remap of it is nearly as sharp as a bicubic
        # remap of the photo itself at a quarter of the cost (720p face's box: 0.14 vs 0.59 ms; GRID s26
        # sharpness 1.02 vs 1.04 of the input's; 2x upsampling: 0.95).
        photo_rgba = np.dstack([skin, np.round(alpha * 255).astype(np.uint8)])
        self._photo = cv2.resize(photo_rgba, None, fx=UPSAMPLE, fy=UPSAMPLE, interpolation=cv2.INTER_CUBIC)
        to_big = np.array([[UPSAMPLE, 0.0, (UPSAMPLE - 1) / 2.0], [0.0, UPSAMPLE, (UPSAMPLE - 1) / 2.0]])
        self._aligned_to_photo = compose(to_big, invert(crop_to_aligned))
        self.warp = MeshWarp(self._ref_points, r, step=step, iterations=iterations)
        self._shift_weights = (self.proportions * interior_weights(self._ref_points))[:, None].astype(np.float32)
        self.shading = ShadingMatch(r, self._shading, model=self._tone) if self._shading > 0 else None

    # -- per frame ------------------------------------------------------------------------------
    def _hide_folds(self, celeb_mask: np.ndarray) -> None:
        """Zero ``celeb_mask`` (R, R) where the last warp folds over: its residual is above MAX_RESIDUAL
        over an area wider than a few pixels. Specks (a few grid cells where thin triangles at the side
        of a frontal face slow the iteration down) are left: their map is off by about a pixel of skin,
        while cutting them out showed the user's skin through the photo as dark spots."""
        bad = cv2.threshold(self.warp.residual, MAX_RESIDUAL, 1.0, cv2.THRESH_BINARY)[1].astype(np.uint8)
        bad = cv2.morphologyEx(bad, cv2.MORPH_OPEN, FOLD_KERNEL)
        if cv2.countNonZero(bad):
            keep = cv2.resize(1 - bad, celeb_mask.shape[::-1], interpolation=cv2.INTER_NEAREST)
            cv2.multiply(celeb_mask, keep, dst=celeb_mask, dtype=cv2.CV_32F)

    def _buffer(self, key: str, shape: tuple, dtype=np.float32) -> np.ndarray:
        buf = self._buffers.get(key)
        if buf is None or buf.shape[0] < shape[0]:
            buf = self._buffers[key] = np.empty(shape, dtype)
        return buf[: shape[0]]

    def _with_photo_proportions(self, i: int, n: int, pts: np.ndarray) -> np.ndarray:
        """The user's mesh (V, 2) of face i of n with its inner points moved toward the photo's proportions
        (a new array; ``pts`` itself when proportions is 0). The shift is measured on a frontal face, so it
        fades out as the head turns away from the photo's pose (``frontal_share``), and the user's neutral
        mesh learns from frontal frames only. Faces are told apart by their place in the batch; the
        running means start again when the number of faces changes."""
        if self.proportions == 0:
            return pts
        if len(self._neutral) != n:
            self._neutral = [None] * n
            self._frontal_seen = [0.0] * n
        if self._neutral[i] is None:
            self._neutral[i] = pts.astype(np.float32)
        neutral = self._neutral[i]
        share = frontal_share(pts, self._ref_points, neutral)
        if share > 0:
            self._frontal_seen[i] += share
            neutral += max(share / self._frontal_seen[i], share * NEUTRAL_RATE) * (pts - neutral)
        return pts + (share * self._shift_weights) * (self._ref_points - neutral)

    def _inverse_map(self, i: int, n: int, pts: np.ndarray, box: tuple[slice, slice]) -> np.ndarray:
        """The warp's map of the ``box`` of face i of n (see ``MeshWarp.inverse_map``), warm-started from that face's
        previous frame when its mesh moved little (WARM_START_MOVE)."""
        previous = self._previous[i]
        warm = previous is not None and np.abs(pts - previous[0]).max() < WARM_START_MOVE * self._resolution
        coords = self.warp.inverse_map(pts, self._aligned_to_photo, start=previous[1] if warm else None,
                                       iterations=WARM_ITERATIONS if warm else None, box=box)
        if previous is None:
            self._previous[i] = (pts.copy(), self.warp.last_grid.copy())
        else:
            previous[0][...], previous[1][...] = pts, self.warp.last_grid
        return coords

    def get(self, faces: np.ndarray, meshes: np.ndarray) -> SwapResult:
        """Swap a batch: faces (N, R, R, 3) BGR uint8 aligned crops of the user, meshes (N, >=468, 2)
        the user's mesh in the same aligned pixels -> SwapResult (face uint8 BGR, face_mask and
        celeb_mask float32 in [0, 1]), zero outside the box of the user's face region."""
        faces = np.asarray(faces)
        if faces.ndim == 3:
            faces = faces[None]
        meshes = np.asarray(meshes, np.float32)
        if meshes.ndim == 2:
            meshes = meshes[None]
        r, n = self._resolution, len(faces)
        if faces.shape[1:] != (r, r, 3) or faces.dtype != np.uint8:
            raise ValueError(f"faces must be uint8 (N, {r}, {r}, 3) BGR, got {faces.dtype} {faces.shape}")
        if meshes.shape[0] != n or meshes.shape[1] < MESH_POINTS:
            raise ValueError(f"meshes must be (N={n}, >={MESH_POINTS}, 2) aligned points, got {meshes.shape}")
        face = self._buffer("face", (n, r, r, 3), np.uint8)  # uint8: the merge takes it as it is
        face_mask = self._buffer("face_mask", (n, r, r))
        celeb_mask = self._buffer("celeb_mask", (n, r, r))
        hole = self._buffer("hole", (1, r, r))[0]
        if len(self._previous) != n:  # faces are told apart by their place in the batch: another number of
            self._previous = [None] * n  # faces starts the per-face histories again
            if self.shading is not None:
                self.shading.forget([])
        for i in range(n):
            pts = self._with_photo_proportions(i, n, meshes[i, :MESH_POINTS, :2])
            # user side: the oval below the hairline; everything per pixel below works on its box only
            face_region(pts, r, self.forehead, self.grow, out=face_mask[i])
            box = region_box(face_mask[i], BOX_MARGIN)
            face[i], celeb_mask[i] = 0, 0.0
            if box is None:
                continue
            coords = self._inverse_map(i, n, pts, box)
            sampled = cv2.remap(self._photo, coords, None, self.interpolation, borderMode=cv2.BORDER_CONSTANT)
            face[i][box] = sampled[..., :3]
            np.multiply(sampled[..., 3], np.float32(1.0 / 255.0), out=celeb_mask[i][box], casting="unsafe")
            if self.warp.residual.max() > MAX_RESIDUAL:  # the warp folds somewhere (a strong head turn)
                self._hide_folds(celeb_mask[i])
            # minus the mouth opening and any hair in the forehead (outside the box the region is 0 already)
            keep = 1.0 - hair_over_forehead(faces[i], pts, self.forehead)[box]
            if self.mouth:
                keep -= mouth_hole(pts, r, MOUTH_SHRINK * r, out=hole)[box]
            if self.band == "skin" and self.grow > 0:  # the band past the outline only where the user shows skin
                keep -= not_skin_past_outline(faces[i], pts, self.grow, self.forehead)[box]
            np.clip(keep, 0.0, 1.0, out=keep)
            if self.shading is not None:
                usable = self._buffer("usable", (1, r, r))[0]
                usable[...] = 0.0
                np.multiply(keep, celeb_mask[i][box], out=usable[box])
                self.shading.apply(face[i], faces[i], pts, usable, self.forehead, box, key=i)
            face_mask[i][box] *= keep
        return SwapResult(face_mask, face, celeb_mask)
