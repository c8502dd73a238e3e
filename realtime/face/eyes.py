"""Eyes from the user: the user's own eyes between the swapped face's lids, so the swap blinks and looks where
the user does (DeepFaceLab's "eye priority", VisoMaster's "restore eyes").

What is the user's, per eye, as a soft mask on a small box of the aligned crop (``EyeShapes.alphas``):

- always the opening between the lids (eyeball, iris: the gaze), grown by ``grow`` of the eye's width;
- as the eye closes, also the lids around it (``lid_grow`` of the eye's width past the lid contour),
  faded in with the eye's *closedness*: a swapped face's open eye warped shut squeezes its lash lines and
  lid crease into a dark slit that reads as a half-open eye, where the user's own closed lids look closed.
  Closedness is measured against the user's own open eyes (``OpenEyes``: a running reference per face), so
  narrow and wide eyes alike count as closed when they close.

``EyePassThrough.prepare`` turns them into a "keep the user's pixels" mask per face in aligned space, which the
merge applies after its own feather (the eye is small: the merge's feather of a few pixels would blend two
irises) and leaves out of its colour statistics, so the user's eyes are the frame's own pixels, colour and all.
The one-photo swap's lids are warped onto the user's, so its opening is the user's as it is; a trained model's
lids only come near the user's, so its kept opening reaches a little further (``PHOTO_EYES``, ``MODEL_EYES``).
``EyePassThrough`` is also the live loop's switch ('user' or 'model', ``toggle()`` flips it).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realtime.face.regions import eye_boxes, eye_opening, eye_opennesses, eye_widths

EYE_CHOICES = ("user", "model")


def check_eyes(value: str) -> str:
    """``value`` if it is one of EYE_CHOICES, else ValueError with the choices."""
    if value not in EYE_CHOICES:
        raise ValueError(f"eyes must be one of {', '.join(EYE_CHOICES)}, got {value!r}")
    return value


class OpenEyes:
    """Per face (any hashable key) a running reference of the user's open-eye openness, per eye, and from it
    how closed each eye is now (0 open .. 1 closed).

    The reference rises quickly toward a more open eye (``rise`` per frame) and sinks slowly (``sink``), so a
    blink of a few frames barely moves it while a new user is learnt within a second. An eye counts as open
    down to ``start`` of its reference and as closed from ``end`` of it.
    """

    def __init__(self, rise: float = 0.1, sink: float = 0.01, start: float = 0.65, end: float = 0.3) -> None:
        self.rise, self.sink, self.start, self.end = rise, sink, start, end
        self._reference: dict = {}

    def closedness(self, key, points: np.ndarray) -> np.ndarray:
        """(2,) how closed each eye of the mesh ``points`` is, updating that face's reference."""
        now = eye_opennesses(points)
        ref = self._reference.get(key)
        if ref is None:
            ref = self._reference[key] = now.copy()
        else:
            ref += np.where(now > ref, self.rise, self.sink) * (now - ref)
        return np.clip((self.start * ref - now) / ((self.start - self.end) * np.maximum(ref, 1e-6)), 0.0, 1.0)

    def forget(self, keys) -> None:
        """Drop the reference of faces not in ``keys``."""
        keep = set(keys)
        for k in list(self._reference):
            if k not in keep:
                del self._reference[k]


@dataclass(frozen=True)
class EyeShapes:
    """How far the user's eyes reach, in fractions of each eye's width: the opening grown by ``grow`` with a
    soft edge of ``feather``; when closed, the lids up to ``lid_grow`` past the contour, edge ``lid_feather``."""

    grow: float = 0.0
    feather: float = 0.02
    lid_grow: float = 0.25
    lid_feather: float = 0.06

    def alphas(self, points: np.ndarray, size: int, closed: np.ndarray) -> list[tuple[int, tuple, np.ndarray]]:
        """[(eye (0: RIGHT_EYE, 1: LEFT_EYE), (rows, cols) box, (h, w) float32 alpha)] per eye of the mesh ``points`` (aligned pixels
        of a size x size crop): where the user's own pixels show. closed: (2,) closedness per eye."""
        widths = eye_widths(points)
        reach = max(self.grow + 3 * self.feather, self.lid_grow + 3 * self.lid_feather) * float(widths.max()) + 2
        out = []
        for eye, box in eye_boxes(points, size, reach):
            w = float(widths[eye])
            alpha = _soft(eye_opening(points, eye, box, self.grow * w), self.feather * w)
            if closed[eye] > 0:
                lids = _soft(eye_opening(points, eye, box, self.lid_grow * w), self.lid_feather * w)
                np.maximum(alpha, lids * np.float32(closed[eye]), out=alpha)
            out.append((eye, box, alpha))
        return out


def _soft(mask: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(mask, (0, 0), sigma) if sigma > 0.1 else mask


# The one-photo swap's eyes: its lids are warped onto the user's, so the opening is the user's, grown a little
# over the photo's lid margin (whose dark lash line otherwise narrows the eye: measured on GRID s4, the first
# 460 frames, FaceMesh's openness correlation 0.937 -> 0.950, blinks 0.032 -> 0.022 from the input's).
PHOTO_EYES = EyeShapes(grow=0.05)
# A trained model's lids do not sit exactly on the user's: the kept opening reaches a little past the user's
# lid contour, over the lid margins (see the README's eye figures).
MODEL_EYES = EyeShapes(grow=0.12, feather=0.05)


class EyePassThrough:
    """Which eyes the swap shows, 'user' or 'model' (see the module docstring), and the per-face state.

    photo_shapes, model_shapes: the kept eyes for swappers whose lids lie on the user's mesh (their
    ``lids_on_mesh`` is True: the one-photo swap) and for the others (trained models); None: PHOTO_EYES,
    MODEL_EYES.
    """

    def __init__(self, mode: str = "user", *, photo_shapes: EyeShapes | None = None,
                 model_shapes: EyeShapes | None = None) -> None:
        self.mode = check_eyes(mode)
        self.photo_shapes, self.model_shapes = photo_shapes or PHOTO_EYES, model_shapes or MODEL_EYES
        self.open_eyes = OpenEyes()
        self._masks: np.ndarray | None = None

    def toggle(self) -> str:
        """Switch between the user's and the model's eyes; a line saying which is now on."""
        self.mode = "model" if self.mode == "user" else "user"
        return "eyes: the user's own" if self.mode == "user" else "eyes: the model's"

    def prepare(self, swapper, face_ids: list, meshes: np.ndarray, size: int) -> np.ndarray | None:
        """For ``swapper``'s faces ``face_ids``, meshes (N, >=468, 2) in aligned pixels of a size x size crop:
        (N, size, size) float32 keep masks for the merge (1: the user's own pixels), or None for the model's
        eyes. The open-eye references are updated either way, so switching is seamless."""
        self.open_eyes.forget(face_ids)
        closed = [self.open_eyes.closedness(fid, mesh) for fid, mesh in zip(face_ids, meshes)]
        if self.mode != "user":
            return None
        shapes = self.photo_shapes if getattr(swapper, "lids_on_mesh", False) else self.model_shapes
        n = len(meshes)
        if self._masks is None or self._masks.shape[1] != size or len(self._masks) < n:
            self._masks = np.zeros((max(n, 1), size, size), np.float32)
        masks = self._masks[:n]
        masks[...] = 0.0
        for i, mesh in enumerate(meshes):
            for _, box, alpha in shapes.alphas(mesh, size, closed[i]):
                np.maximum(masks[i][box], alpha, out=masks[i][box])
        return masks
