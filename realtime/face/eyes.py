"""Eyes from the user: the user's own eyes between the swapped face's lids, so the swap blinks and looks where
the user does (DeepFaceLab's "eye priority", VisoMaster's "restore eyes").

What is the user's, per eye, as a soft mask on a small box of the aligned crop (``EyeShapes.alphas``):

- always the opening between the lids (eyeball, iris: the gaze), grown by ``grow`` of the eye's width;
- as the eye closes, also the lids around it (``lid_grow`` of the eye's width past the lid contour),
  faded in with the eye's *closedness*: a swapped face's open eye warped shut squeezes its lash lines and
  lid crease into a dark slit that reads as a half-open eye, where the user's own closed lids look closed.
  Closedness is measured against the user's own open eyes (``OpenEyes``: a running reference per face), so
  narrow and wide eyes alike count as closed when they close.

``EyePassThrough.draw`` draws them into the swapped frame after the merge, in frame pixels: the user's eyes at
the camera's own resolution (a model's aligned crop may be coarser than the face in the frame), with their own
narrow soft edge (the merge's feather of a few pixels would blend two irises). The user's eye pixels are
recoloured toward the swap's own eye colours (``EyeColours``: two classes, iris and whites): the user's raw eye
colour is read by dlib as the user (GRID s4 with the still of s1: identity cost 0.035 with the raw eyes, 0.017
recoloured), so the swap keeps the target's eye colour and takes the user's gaze and blinks. The same shapes
serve the one-photo swap (its lids are warped onto the user's) and trained models (their lids only come near
the user's: a wider reach was measured, ``EYES``).
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

    def alphas(self, points: np.ndarray, shape: tuple[int, int], closed: np.ndarray) -> list[tuple[int, tuple, np.ndarray]]:
        """[(eye (0: RIGHT_EYE, 1: LEFT_EYE), (rows, cols) box, (h, w) float32 alpha)] per eye of the mesh
        ``points`` (pixels of an image of ``shape``, height and width): where the user's own pixels show.
        closed: (2,) closedness per eye."""
        widths = eye_widths(points)
        reach = max(self.grow + 3 * self.feather, self.lid_grow + 3 * self.lid_feather) * float(widths.max()) + 2
        out = []
        for eye, box in eye_boxes(points, shape, reach):
            w = float(widths[eye])
            alpha = _soft(eye_opening(points, eye, box, self.grow * w), self.feather * w)
            if closed[eye] > 0:
                lids = _soft(eye_opening(points, eye, box, self.lid_grow * w), self.lid_feather * w)
                np.maximum(alpha, lids * np.float32(closed[eye]), out=alpha)
            out.append((eye, box, alpha))
        return out


def _soft(mask: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(mask, (0, 0), sigma) if sigma > 0.1 else mask


# The opening grown a little over the swap's lid margin, whose dark lash line otherwise narrows the eye (GRID s4,
# the first 460 frames, one-photo swap: FaceMesh's openness correlation 0.937 -> 0.950, blinks 0.032 -> 0.022
# from the input's). Further costs identity for little: the shipped model with 0.12 of the eye's width and a
# softer edge (0.05), dlib distance 0.361 against 0.348 (its own eyes: 0.336), correlation 0.957 against 0.953.
EYES = EyeShapes(grow=0.05)


class EyeColours:
    """Per (face, eye) the L*a*b* colours of the user's eyeball and of the swap's (the target's iris and whites,
    as the swap draws them into the user's opening), each as two classes, dark (iris, pupil, lashes) and light
    (the whites), split at the opening's median lightness: mean and spread per class, smoothed over the frames
    where the eye is open. ``recolour`` moves each user pixel to the swap's colours of its class (soft
    membership around the user's split): the target's eye colour, the user's gaze and blinks."""

    def __init__(self, rate: float = 0.2, open_below: float = 0.2) -> None:
        self.rate, self.open_below = rate, open_below
        self._stats: dict = {}

    @staticmethod
    def _classes(lab: np.ndarray) -> np.ndarray:
        """(13,) of (n, 3) L*a*b* pixels: the split lightness (their median), the mean of the dark and of the
        light class (3 each), the spread of each (3 each)."""
        split = float(np.median(lab[:, 0]))
        dark, light = lab[lab[:, 0] <= split], lab[lab[:, 0] > split]
        if len(light) == 0:
            light = dark
        return np.concatenate([[split], dark.mean(0), light.mean(0), dark.std(0) + 1.0, light.std(0) + 1.0])

    def update(self, key, user_lab: np.ndarray, swap_u8: np.ndarray, opening: np.ndarray, closed: float) -> None:
        """Learn from one eye: (h, w, 3) boxes of the user (uint8 L*a*b*, OpenCV's 8-bit scale) and of the swap
        (uint8 BGR), ``opening`` (h, w) bool."""
        if closed >= self.open_below or opening.sum() < 8:
            return
        now = np.stack([self._classes(lab[opening].astype(np.float32))
                        for lab in (user_lab, cv2.cvtColor(swap_u8, cv2.COLOR_BGR2LAB))])
        old = self._stats.get(key)
        self._stats[key] = now if old is None else old + self.rate * (now - old)

    def recolour(self, key, user_u8: np.ndarray, user_lab: np.ndarray, weight: float) -> np.ndarray:
        """(h, w, 3) uint8 BGR: ``user_u8`` (its L*a*b* ``user_lab``, uint8) with ``weight`` (0..1) of the way to
        the swap's eye colours, and at most as far as the swap's eye has the contrast of the user's (a blurred
        eye, as a trained model may draw, would wash the user's iris out: the gaze must stay visible).

        Each pixel's share of the light class depends on its lightness only (8-bit), so the move is one gain
        and one offset per channel looked up by lightness: lab * gain[L] + offset[L]."""
        stats = self._stats.get(key)
        if stats is None:
            return user_u8
        u, w = stats
        weight *= float(np.clip((w[4] - w[1]) / max(u[4] - u[1], 1e-3), 0.0, 1.0))
        if weight <= 0:
            return user_u8
        spread = max(0.25 * (u[4] - u[1]), 2.0)  # the soft split: a quarter of the way between the classes' L
        light = 1.0 / (1.0 + np.exp(-(np.arange(256, dtype=np.float64)[:, None] - u[0]) / spread))  # (256, 1)
        gain = np.zeros((256, 3))
        offset = np.zeros((256, 3))
        for k, share in ((0, 1.0 - light), (1, light)):
            mu_u, mu_s = u[1 + 3 * k: 4 + 3 * k], w[1 + 3 * k: 4 + 3 * k]
            scale = np.clip(w[7 + 3 * k: 10 + 3 * k] / u[7 + 3 * k: 10 + 3 * k], 0.5, 2.0)
            gain += share * scale
            offset += share * (mu_s - mu_u * scale)
        gain = (1.0 + weight * (gain - 1.0)).astype(np.float32)
        offset = (weight * offset + 0.5).astype(np.float32)  # + 0.5: rounded by the cast below
        lightness = user_lab[..., 0]
        lab = np.take(gain, lightness, axis=0)
        lab *= user_lab
        lab += np.take(offset, lightness, axis=0)
        return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)

    def forget(self, face_ids) -> None:
        keep = set(face_ids)
        for k in list(self._stats):
            if k[0] not in keep:
                del self._stats[k]


class EyePassThrough:
    """Which eyes the swap shows, 'user' or 'model' (see the module docstring), and the per-face state.

    shapes: how far the user's eyes reach (None: EYES).
    """

    def __init__(self, mode: str = "user", *, shapes: EyeShapes | None = None) -> None:
        self.mode = check_eyes(mode)
        self.shapes = shapes or EYES
        self.open_eyes = OpenEyes()
        self.colours = EyeColours()

    def toggle(self) -> str:
        """Switch between the user's and the model's eyes; a line saying which is now on."""
        self.mode = "model" if self.mode == "user" else "user"
        return "eyes: the user's own" if self.mode == "user" else "eyes: the model's"

    def draw(self, frame: np.ndarray, out: np.ndarray, faces: list) -> None:
        """Draw the user's eyes from ``frame`` into ``out`` (the swapped frame, BGR uint8, same size; in place),
        recoloured toward the swap's own eye colours (``EyeColours``), for each of ``faces``: (face id, mesh
        (>=468, 2) in frame pixels, opacity of its swap). Nothing is drawn for the model's eyes; the open-eye
        references and colours are kept up to date either way, so switching is seamless."""
        ids = [fid for fid, _, _ in faces]
        self.open_eyes.forget(ids)
        self.colours.forget(ids)
        for fid, mesh, opacity in faces:
            closed = self.open_eyes.closedness(fid, mesh)
            for eye, box, alpha in self.shapes.alphas(mesh, out.shape[:2], closed):
                user, swap = frame[box], out[box]
                user_lab = cv2.cvtColor(user, cv2.COLOR_BGR2LAB)
                key = (fid, eye)
                self.colours.update(key, user_lab, swap, eye_opening(mesh, eye, box) > 0.5, float(closed[eye]))
                if self.mode != "user" or opacity <= 0:
                    continue
                user = self.colours.recolour(key, user, user_lab, 1.0 - float(closed[eye]))
                if opacity < 1:
                    alpha = alpha * np.float32(opacity)
                cv2.blendLinear(user, swap, alpha, 1.0 - alpha, dst=swap)
