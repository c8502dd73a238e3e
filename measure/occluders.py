"""Moving synthetic occluders drawn over real faces, their masks the ground truth (`swapcam eval --occluders`).

This is the EVALUATION family of occluders. The occlusion model is trained on another family
(``training/occlusion_synth.py``) that shares no code, no textures and no seeds with this one:

- code and shapes: here every kind is a hand-drawn catalogue (hands in six poses built from a palm and
  capsule fingers, six named lens shapes, ball-head microphones, mugs with handles, phones, swaying hair);
  training pastes random blobs and polygons, its own procedural hands (tapered-quad fingers on a convex
  palm) and superellipse glasses, with their own size ranges;
- textures: here only scikit-image's bundled pictures (coffee, brick, gravel, grass, rocket, ...), never
  read by training; training cuts its textures from the non-face parts of its own facesets' frames;
- skin: here a fixed palette of six tones plus the user's own cheek colour; training samples skin from
  other training faces;
- seeds: here ``EVAL_SEED_BASE`` and up (each kind and segment its own); training seeds stay below
  ``training.occlusion_synth.TRAIN_SEED_LIMIT`` (checked by a test).

An occluder is drawn once as a *sprite* (colour, alpha and label, in units of the inter-ocular distance,
``UNIT`` sprite pixels per iod) and placed each frame by a similarity transform from the face's landmarks
(eye centres, mouth, chin) and a motion path over its segment of the clip. The label is what a swap must
keep: the opaque parts (alpha >= 0.5) and, for glasses, the whole lens (a tinted lens is part of the glasses).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

KINDS = ("hand", "glasses_thin", "glasses_thick", "microphone", "cup", "phone", "hair")
EVAL_SEED_BASE = 1_000_000  # every eval seed is at least this (training's are below it)
UNIT = 48.0  # sprite pixels per inter-ocular distance

# BGR skin tones, light to dark (roughly Fitzpatrick I-VI); the user's own cheek colour is added per clip
SKIN_TONES = ((196, 214, 242), (150, 184, 226), (112, 152, 205), (82, 122, 176), (56, 86, 130), (36, 52, 82))
HAIR_COLOURS = ((20, 20, 24), (30, 45, 70), (60, 90, 140), (90, 150, 200), (40, 70, 150), (170, 170, 175))
FRAME_COLOURS = ((15, 15, 15), (30, 50, 80), (60, 140, 190), (180, 180, 185), (40, 40, 170), (90, 50, 20))
HAND_POSES = ("open", "closed", "fist", "point", "peace", "cover")
LENS_SHAPES = ("round", "oval", "rect", "aviator", "cat", "browline")
EVAL_TEXTURES = ("coffee.png", "brick.png", "gravel.png", "grass.png", "rocket.jpg", "chelsea.png",
                 "motorcycle_left.png", "hubble_deep_field.jpg", "coins.png", "color.png")


@lru_cache(maxsize=1)
def eval_textures() -> tuple[np.ndarray, ...]:
    """scikit-image's bundled pictures as BGR uint8 (the eval's only textures; training never reads them)."""
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    images = []
    for name in EVAL_TEXTURES:
        image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        if image is not None:
            images.append(image)
    if not images:
        raise FileNotFoundError(f"no scikit-image sample pictures found in {folder}")
    return tuple(images)


def _patch(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A random (h, w, 3) patch of a random eval texture, resized to ``size`` = (w, h)."""
    tex = eval_textures()[rng.integers(len(eval_textures()))]
    h, w = tex.shape[:2]
    side = int(rng.uniform(0.3, 0.8) * min(h, w))
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    return cv2.resize(tex[y:y + side, x:x + side], size, interpolation=cv2.INTER_AREA)


@dataclass
class Sprite:
    """An occluder drawn in its own pixels: colour (h, w, 3) uint8, alpha and label (h, w) float32 in [0, 1],
    and its anchor (x, y) in sprite pixels: the point the placement puts on the face."""

    colour: np.ndarray
    alpha: np.ndarray
    label: np.ndarray
    anchor: tuple[float, float]


class _Canvas:
    """Colour, alpha and label drawn together, in iod units (``UNIT`` px each)."""

    def __init__(self, width: float, height: float) -> None:
        self.w, self.h = int(round(width * UNIT)), int(round(height * UNIT))
        self.colour = np.zeros((self.h, self.w, 3), np.uint8)
        self.alpha = np.zeros((self.h, self.w), np.uint8)
        self.label = np.zeros((self.h, self.w), np.uint8)

    @staticmethod
    def px(points) -> np.ndarray:
        return np.round(np.asarray(points, np.float64) * UNIT * 16).astype(np.int32)  # 4 fractional bits

    def poly(self, points, colour, alpha: int = 255, label: bool = True) -> None:
        pts = [self.px(points)]
        cv2.fillPoly(self.colour, pts, colour, cv2.LINE_AA, shift=4)
        cv2.fillPoly(self.alpha, pts, alpha, cv2.LINE_AA, shift=4)
        if label:
            cv2.fillPoly(self.label, pts, 255, cv2.LINE_AA, shift=4)

    def line(self, a, b, width: float, colour, alpha: int = 255, label: bool = True) -> None:
        """A capsule (round caps) from a to b, ``width`` iod wide."""
        a, b, t = self.px(a), self.px(b), max(1, int(round(width * UNIT)))
        cv2.line(self.colour, tuple(a), tuple(b), colour, t, cv2.LINE_AA, shift=4)
        cv2.line(self.alpha, tuple(a), tuple(b), alpha, t, cv2.LINE_AA, shift=4)
        if label:
            cv2.line(self.label, tuple(a), tuple(b), 255, t, cv2.LINE_AA, shift=4)

    def polyline(self, points, width: float, colour, closed: bool = True) -> None:
        pts = [self.px(points)]
        t = max(1, int(round(width * UNIT)))
        cv2.polylines(self.colour, pts, closed, colour, t, cv2.LINE_AA, shift=4)
        cv2.polylines(self.alpha, pts, closed, 255, t, cv2.LINE_AA, shift=4)
        cv2.polylines(self.label, pts, closed, 255, t, cv2.LINE_AA, shift=4)

    def shade(self, top: float, bottom: float, rng: np.random.Generator, noise: float = 4.0) -> None:
        """Light from above (a vertical gain ramp) plus fine noise, on the drawn pixels' colour."""
        ramp = np.linspace(top, bottom, self.h, dtype=np.float32)[:, None, None]
        c = self.colour.astype(np.float32) * ramp + rng.normal(0.0, noise, self.colour.shape).astype(np.float32)
        self.colour = np.clip(c, 0, 255).astype(np.uint8)

    def sprite(self, anchor: tuple[float, float]) -> Sprite:
        alpha = self.alpha.astype(np.float32) / 255.0
        return Sprite(self.colour, alpha, (self.label >= 128).astype(np.float32), (anchor[0] * UNIT, anchor[1] * UNIT))


def _ellipse_points(cx: float, cy: float, rx: float, ry: float, a0: float = 0.0, a1: float = 360.0, n: int = 48):
    t = np.deg2rad(np.linspace(a0, a1, n))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


# -- the kinds ------------------------------------------------------------------------------------
def hand_sprite(rng: np.random.Generator, skin: tuple[int, int, int]) -> Sprite:
    """A hand (palm + four capsule fingers + thumb) in one of HAND_POSES, fingers up, anchor at the palm centre."""
    pose = HAND_POSES[rng.integers(len(HAND_POSES))]
    c = _Canvas(3.2, 4.2)
    tone = np.clip(np.asarray(skin, np.float64) * rng.uniform(0.92, 1.08), 0, 255)
    colour = tuple(int(v) for v in tone)
    crease = tuple(int(v * 0.72) for v in tone)
    px, py, pw, ph = 1.6, 2.9, rng.uniform(1.2, 1.45), rng.uniform(1.15, 1.35)
    palm = np.array([[px - pw / 2, py - ph / 2], [px + pw / 2, py - ph / 2], [px + pw / 2 * 0.9, py + ph / 2],
                     [px - pw / 2 * 0.85, py + ph / 2 + 0.1], [px - pw / 2 * 0.8, py + ph]])
    c.poly(palm, colour)
    c.line(palm[3], palm[4], 0.5, colour)  # the wrist
    lengths = np.array([0.95, 1.08, 1.0, 0.78]) * rng.uniform(0.9, 1.1)
    spread = {"open": 11.0, "closed": 1.5, "peace": 0.0, "cover": 3.0}.get(pose, 0.0)
    extended = {"fist": [0.3] * 4, "point": [1.0, 0.3, 0.3, 0.3], "peace": [1.0, 1.0, 0.3, 0.3]}.get(pose, [1.0] * 4)
    width = rng.uniform(0.26, 0.31)
    for k in range(4):
        base = np.array([px - pw / 2 + pw * (k + 0.5) / 4, py - ph / 2 + 0.1])
        angle = np.deg2rad((k - 1.5) * spread + (12.0 * (k - 0.5) if pose == "peace" and k < 2 else 0.0))
        tip = base + lengths[k] * extended[k] * np.array([np.sin(angle), -np.cos(angle)])
        c.line(base, tip, width * (1.15 if extended[k] < 1 else 1.0), colour)
        if k:
            c.line(base + [-width / 2, 0], base + [-width / 2, -0.25 * extended[k]], 0.02, crease, label=False)
        if extended[k] == 1.0:  # a nail, a little lighter
            nail = tip + 0.08 * (base - tip) / max(np.linalg.norm(base - tip), 1e-6)
            c.line(nail, nail, width * 0.55, tuple(min(255, int(v * 1.1) + 12) for v in tone), label=False)
    thumb_base = np.array([px - pw / 2 + 0.05, py + 0.1])
    thumb_angle = np.deg2rad(-55 if pose in ("open", "peace") else -25)
    thumb_tip = thumb_base + 0.85 * np.array([np.sin(thumb_angle), -np.cos(thumb_angle)])
    c.line(thumb_base, thumb_tip, width * 1.15, colour)
    c.line([px - 0.2, py + 0.25], [px + 0.35, py - 0.05], 0.02, crease, label=False)  # a palm line
    c.shade(1.08, 0.86, rng)
    return c.sprite((px, py))


def _lens_outline(shape: str, cx: float, cy: float, side: int) -> np.ndarray:
    """(n, 2) outline of one lens centred at (cx, cy) in iod units; side -1 = image-left lens, +1 = right."""
    if shape == "round":
        return _ellipse_points(cx, cy, 0.36, 0.34)
    if shape == "oval":
        return _ellipse_points(cx, cy, 0.42, 0.29)
    if shape == "rect":
        w, h, r = 0.44, 0.3, 0.08
        arcs = [_ellipse_points(cx + sx * (w - r), cy + sy * (h - r), r, r, a0, a0 + 90, 8)
                for sx, sy, a0 in ((1, 1, 0), (-1, 1, 90), (-1, -1, 180), (1, -1, 270))]
        return np.vstack(arcs)
    if shape == "aviator":  # wide at the top, deeper on the outer side
        pts = _ellipse_points(cx, cy, 0.45, 0.36)
        pts[:, 1] += np.where(pts[:, 1] < cy, 0.35 * (pts[:, 1] - cy), 0.0)
        pts[:, 1] += 0.08 * np.clip(side * (pts[:, 0] - cx) / 0.45, 0, 1) * (pts[:, 1] > cy)
        return pts
    if shape == "cat":  # upswept outer corners
        pts = _ellipse_points(cx, cy, 0.43, 0.28)
        pts[:, 1] -= 0.12 * np.clip(side * (pts[:, 0] - cx) / 0.43, 0, 1) ** 2
        return pts
    pts = _ellipse_points(cx, cy, 0.43, 0.27)  # browline: the drawn frame is heavy on top only
    return pts


def glasses_sprite(rng: np.random.Generator, thickness: float) -> Sprite:
    """Glasses: two lenses (tinted, with a reflection) in one of LENS_SHAPES, frame ``thickness`` iod wide,
    bridge and temple stubs; anchor at the midpoint of the eye centres (eyes at x = +-0.5 iod)."""
    shape = LENS_SHAPES[rng.integers(len(LENS_SHAPES))]
    c = _Canvas(3.0, 1.5)
    cx, cy = 1.5, 0.75
    if rng.random() < 0.35:  # tortoise shell, cut from an eval picture and darkened
        frame_colour = None
        tex = (_patch(rng, (c.w, c.h)).astype(np.float32) * rng.uniform(0.35, 0.6)).astype(np.uint8)
    else:
        frame_colour = FRAME_COLOURS[rng.integers(len(FRAME_COLOURS))]
    tint = np.array([rng.uniform(60, 200)] * 3) * rng.uniform(0.8, 1.2, 3)
    lens_alpha = int(rng.uniform(0.12, 0.45) * 255)
    outlines = [_lens_outline(shape, cx + side * 0.5, cy + 0.02, side) for side in (-1, 1)]
    for outline in outlines:  # lens: tint over the eye, labelled as a whole
        c.poly(outline, tuple(int(v) for v in tint), lens_alpha, label=True)
    lens_mask = c.alpha.copy()
    for outline in outlines:  # a reflection streak across each lens
        x0, y0 = outline.min(0)
        x1, y1 = outline.max(0)
        streak = np.array([[x0 + 0.15, y1], [x0 + 0.3, y1], [x1 - 0.1, y0], [x1 - 0.25, y0]])
        canvas = np.zeros_like(c.alpha)
        cv2.fillPoly(canvas, [c.px(streak)], int(rng.uniform(40, 110)), cv2.LINE_AA, shift=4)
        reflect = np.minimum(canvas, lens_mask)
        c.alpha = np.maximum(c.alpha, reflect)
        c.colour[reflect > 0] = np.maximum(c.colour[reflect > 0], 235)
    frame_layer = _Canvas(3.0, 1.5)
    tone = frame_colour or (0, 0, 0)
    for side, outline in zip((-1, 1), outlines):
        if shape == "browline":
            top = outline[outline[:, 1] <= cy + 0.02]
            frame_layer.polyline(top[np.argsort(top[:, 0])], thickness * 2.2, tone, closed=False)
            frame_layer.polyline(outline, thickness * 0.45, tone)
        else:
            frame_layer.polyline(outline, thickness, tone)
        outer = outline[np.argmax(side * outline[:, 0])]
        frame_layer.line(outer + [0, -0.08], [cx + side * 1.42, cy - 0.12], thickness * 1.2, tone)  # temple stub
    inner = [outline[np.argmin(abs(outline[:, 0] - cx))] for outline in outlines]
    bridge = _ellipse_points(cx, min(p[1] for p in inner) + 0.06, abs(inner[1][0] - inner[0][0]) / 2, 0.08, 180, 360, 12)
    frame_layer.polyline(bridge, thickness, tone, closed=False)
    if frame_colour is None:
        frame_layer.colour = np.where(frame_layer.alpha[..., None] > 0, tex, frame_layer.colour)
    a = frame_layer.alpha.astype(np.float32)[..., None] / 255.0
    c.colour = (frame_layer.colour * a + c.colour * (1 - a)).astype(np.uint8)
    c.alpha = np.maximum(c.alpha, frame_layer.alpha)
    c.label = np.maximum(c.label, frame_layer.label)
    return c.sprite((cx, cy))


def microphone_sprite(rng: np.random.Generator) -> Sprite:
    """A hand-held or stage microphone: a meshed ball head on a tapered handle; anchor at the head's centre."""
    c = _Canvas(1.4, 4.2)
    r = rng.uniform(0.36, 0.5)
    hx, hy = 0.7, 0.65
    dark = rng.random() < 0.4
    head = (40, 40, 42) if dark else tuple(int(v) for v in rng.uniform(150, 200, 3))
    c.poly(_ellipse_points(hx, hy, r, r), head)
    for k in np.arange(-r, r, 0.07):  # the grille
        half = math.sqrt(max(r * r - k * k, 0.0))
        grille = tuple(max(0, int(v) - 45) for v in head)
        c.line([hx + k, hy - half], [hx + k, hy + half], 0.018, grille, label=False)
        c.line([hx - half, hy + k], [hx + half, hy + k], 0.018, grille, label=False)
    body = (20, 20, 22) if rng.random() < 0.7 else tuple(int(v) for v in rng.uniform(120, 180, 3))
    w0, w1 = r * rng.uniform(0.55, 0.7), r * rng.uniform(0.3, 0.42)
    c.poly([[hx - w0, hy + r * 0.85], [hx + w0, hy + r * 0.85], [hx + w1, 4.1], [hx - w1, 4.1]], body)
    c.line([hx - w0, hy + r * 0.9], [hx + w0, hy + r * 0.9], 0.08, (150, 150, 150))  # the ring
    c.line([hx + w0 * 0.5, hy + r + 0.2], [hx + w1 * 0.5, 4.0], 0.05, tuple(min(255, v + 60) for v in body), label=False)
    c.shade(1.05, 0.9, rng, noise=3.0)
    return c.sprite((hx, hy))


def cup_sprite(rng: np.random.Generator) -> Sprite:
    """A mug seen from the side, rim up: printed or plain body, handle; anchor at the rim's centre."""
    c = _Canvas(2.6, 2.6)
    w, h = rng.uniform(1.1, 1.45), rng.uniform(1.3, 1.7)
    x0, y0 = 0.35, 0.45
    body = [[x0, y0], [x0 + w, y0], *_ellipse_points(x0 + w / 2, y0 + h, w / 2, 0.12, 0, 180, 16).tolist()]
    plain = tuple(int(v) for v in rng.uniform(30, 230, 3))
    c.poly(body, plain)
    if rng.random() < 0.6:  # a printed mug: an eval picture on its body
        print_ = _patch(rng, (c.w, c.h))
        inside = np.zeros((c.h, c.w), np.uint8)
        cv2.fillPoly(inside, [c.px(body)], 255, cv2.LINE_AA, shift=4)
        c.colour = np.where(inside[..., None] > 0, print_, c.colour)
    ring = _ellipse_points(x0 + w + 0.18, y0 + h * 0.45, 0.3, h * 0.28, -90, 90, 20)
    c.polyline(ring, 0.14, plain, closed=False)
    c.poly(_ellipse_points(x0 + w / 2, y0, w / 2, 0.1), tuple(max(0, v - 60) for v in plain))  # the rim
    c.polyline(_ellipse_points(x0 + w / 2, y0, w / 2, 0.1), 0.04, tuple(min(255, v + 50) for v in plain))
    c.shade(1.0, 0.85, rng, noise=3.0)
    # a vertical highlight where the light meets the cylinder
    col = c.colour.astype(np.float32)
    xs = np.arange(c.w, dtype=np.float32) / UNIT
    col *= (1.0 + 0.25 * np.exp(-((xs - (x0 + w * 0.3)) / 0.15) ** 2))[None, :, None]
    c.colour = np.clip(col, 0, 255).astype(np.uint8)
    return c.sprite((x0 + w / 2, y0))


def phone_sprite(rng: np.random.Generator) -> Sprite:
    """A phone: rounded black slab, screen lit with an eval picture or back with a camera; anchor at its centre."""
    c = _Canvas(1.5, 2.8)
    w, h, r = rng.uniform(1.05, 1.3), rng.uniform(2.1, 2.5), 0.16
    cx, cy = 0.75, 1.4
    outline = np.vstack([_ellipse_points(cx + sx * (w / 2 - r), cy + sy * (h / 2 - r), r, r, a0, a0 + 90, 8)
                         for sx, sy, a0 in ((1, 1, 0), (-1, 1, 90), (-1, -1, 180), (1, -1, 270))])
    if rng.random() < 0.5:  # the screen side
        c.poly(outline, (12, 12, 14))
        screen = _patch(rng, (c.w, c.h))
        inner = np.zeros((c.h, c.w), np.uint8)
        cv2.fillPoly(inner, [c.px((outline - [cx, cy]) * 0.9 + [cx, cy])], 255, cv2.LINE_AA, shift=4)
        c.colour = np.where(inner[..., None] > 0, screen, c.colour)
    else:  # the back: a colour, a camera block
        back = tuple(int(v) for v in rng.uniform(20, 220, 3))
        c.poly(outline, back)
        c.poly(_ellipse_points(cx - w / 2 + 0.3, cy - h / 2 + 0.35, 0.2, 0.2), (25, 25, 25))
        c.poly(_ellipse_points(cx - w / 2 + 0.3, cy - h / 2 + 0.35, 0.09, 0.09), (70, 60, 60))
        c.shade(1.05, 0.9, rng, noise=2.0)
    return c.sprite((cx, cy))


def hair_sprite(rng: np.random.Generator, phase: float) -> Sprite:
    """Strands of hair falling from the forehead over brows and eyes, swaying with ``phase`` (radians);
    anchor at the top centre."""
    c = _Canvas(3.0, 2.4)
    colour = np.asarray(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))], np.float64)
    for _ in range(int(rng.integers(6, 22))):
        x = rng.uniform(0.6, 2.4)
        length = rng.uniform(0.8, 2.2)
        bend = rng.uniform(-0.5, 0.5) + 0.12 * math.sin(phase + x)
        t = np.linspace(0, 1, 16)
        xs = x + bend * t ** 2 + 0.05 * np.sin(6 * t + x)
        ys = 0.05 + length * t
        width = rng.uniform(0.02, 0.06)
        tone = tuple(int(v) for v in np.clip(colour * rng.uniform(0.8, 1.25), 0, 255))
        c.polyline(np.stack([xs, ys], 1), width, tone, closed=False)
    c.shade(1.1, 0.9, rng, noise=3.0)
    return c.sprite((1.5, 0.05))


# -- placement over a clip -------------------------------------------------------------------------
@dataclass
class FaceFrame:
    """Where a face is in a frame: eye centres' midpoint (x, y), inter-ocular distance (px), roll (radians),
    and its face axes (unit vectors: x along the eyes, y down the face)."""

    centre: np.ndarray
    iod: float
    roll: float

    @classmethod
    def from_landmarks(cls, landmarks68: np.ndarray) -> FaceFrame:
        from realtime.face.alignment import eye_centres

        right, left = eye_centres(np.asarray(landmarks68, np.float64))
        d = left - right
        return cls((left + right) / 2, float(np.hypot(*d)), float(math.atan2(d[1], d[0])))

    def point(self, u: float, v: float) -> np.ndarray:
        """Frame pixels of face coordinates (u, v) in iod (u right along the eyes, v down the face)."""
        c, s = math.cos(self.roll), math.sin(self.roll)
        return self.centre + self.iod * np.array([u * c - v * s, u * s + v * c])


def _smooth(t: float) -> float:
    return t * t * (3 - 2 * t)


class _Motion:
    """A path in face coordinates over a segment: from ``start`` to ``hold`` (reached at 35 %), a wobble,
    then to ``end``; rotation (degrees, relative to the face's roll) from ``angles[0]`` to ``angles[1]``."""

    def __init__(self, start, hold, end, angles, wobble: float, rng: np.random.Generator) -> None:
        self.start, self.hold, self.end = (np.asarray(p, np.float64) for p in (start, hold, end))
        self.angles, self.wobble = angles, wobble
        self.freq = rng.uniform(0.8, 2.0, 2)

    def at(self, t: float) -> tuple[np.ndarray, float]:
        if t < 0.35:
            p = self.start + (self.hold - self.start) * _smooth(t / 0.35)
        elif t < 0.65:
            p = self.hold.copy()
        else:
            p = self.hold + (self.end - self.hold) * _smooth((t - 0.65) / 0.35)
        p = p + self.wobble * np.sin(2 * math.pi * self.freq * t * np.array([1.0, 1.3]))
        return p, self.angles[0] + (self.angles[1] - self.angles[0]) * t


class Occluder:
    """One occluder of one kind for one segment of a clip (seeded), placed on a face per frame."""

    def __init__(self, kind: str, seed: int, skin_tones: list[tuple[int, int, int]]) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown occluder kind {kind!r}; choose from {', '.join(KINDS)}")
        if seed < EVAL_SEED_BASE:
            raise ValueError(f"eval occluder seeds start at {EVAL_SEED_BASE} (below are training's), got {seed}")
        self.kind, self.seed = kind, seed
        rng = np.random.default_rng(seed)
        self.scale = 1.0
        side = 1 if rng.random() < 0.5 else -1
        if kind == "hand":
            self.sprite = hand_sprite(rng, skin_tones[rng.integers(len(skin_tones))])
            self.scale = rng.uniform(0.95, 1.2)
            target = [(0.0, 1.1), (side * 0.6, 0.55), (side * 0.35, 0.0), (0.0, 0.4), (0.0, 1.5), (side * 0.2, -0.6)]
            hold = np.asarray(target[rng.integers(len(target))]) + rng.uniform(-0.2, 0.2, 2)
            self.motion = _Motion((side * 3.0, 2.5), hold, (-side * 2.8, 2.8), (side * rng.uniform(10, 50),
                                  side * rng.uniform(-20, 30)), 0.06, rng)
        elif kind.startswith("glasses"):
            thin = kind == "glasses_thin"
            self.sprite = glasses_sprite(rng, rng.uniform(0.03, 0.045) if thin else rng.uniform(0.09, 0.13))
            self.scale = rng.uniform(0.95, 1.08)
            drop = rng.uniform(0.0, 0.08)
            self.motion = _Motion((0, drop), (0, drop), (0, drop + 0.03), (0.0, rng.uniform(-2, 2)), 0.015, rng)
        elif kind == "microphone":
            self.sprite = microphone_sprite(rng)
            self.scale = rng.uniform(0.9, 1.15)
            hold = (side * rng.uniform(0.0, 0.35), rng.uniform(1.15, 1.5))
            self.motion = _Motion((hold[0], hold[1] + 0.3), hold, (hold[0] + side * 0.2, hold[1] + 0.1),
                                  (side * rng.uniform(0, 30), side * rng.uniform(0, 35)), 0.05, rng)
        elif kind == "cup":
            self.sprite = cup_sprite(rng)
            self.scale = rng.uniform(0.9, 1.15)
            hold = (side * rng.uniform(0.0, 0.2), rng.uniform(0.95, 1.15))
            self.motion = _Motion((hold[0], 3.2), hold, (hold[0] + side * 0.3, 3.4), (0.0, side * rng.uniform(5, 25)),
                                  0.03, rng)
        elif kind == "phone":
            self.sprite = phone_sprite(rng)
            self.scale = rng.uniform(0.95, 1.15)
            hold = (side * rng.uniform(0.8, 1.05), rng.uniform(0.4, 0.8)) if rng.random() < 0.6 else \
                (side * rng.uniform(0.0, 0.3), rng.uniform(1.3, 1.6))
            self.motion = _Motion((side * 2.5, 2.0), hold, (side * 2.6, 2.2), (side * rng.uniform(-10, 20),
                                  side * rng.uniform(-20, 10)), 0.04, rng)
        else:
            self._hair_rng_state = rng.bit_generator.state
            self.sprite = hair_sprite(np.random.default_rng(seed), 0.0)
            self.scale = rng.uniform(0.9, 1.1)
            top = (rng.uniform(-0.4, 0.4), rng.uniform(-1.1, -0.8))
            self.motion = _Motion(top, top, (top[0], top[1] + 0.05), (rng.uniform(-15, 15),) * 2, 0.02, rng)

    def layer(self, face: FaceFrame, t: float, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Colour (H, W, 3) uint8, alpha (H, W) float32 and label (H, W) bool of the occluder in a frame of
        ``shape``, at time ``t`` in [0, 1] of its segment."""
        sprite = self.sprite
        if self.kind == "hair":  # the strands sway: redrawn from the same seed at this phase
            sprite = hair_sprite(np.random.default_rng(self.seed), 2 * math.pi * 1.5 * t)
        (u, v), angle = self.motion.at(t)
        target = face.point(u, v)
        a = face.roll + math.radians(angle)
        s = face.iod / UNIT * self.scale
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) * s
        matrix = np.hstack([rot, (target - rot @ np.asarray(sprite.anchor))[:, None]])
        size = (shape[1], shape[0])
        flags = dict(flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        colour = cv2.warpAffine(sprite.colour, matrix, size, **flags)
        alpha = cv2.warpAffine(sprite.alpha, matrix, size, **flags)
        label = cv2.warpAffine(sprite.label, matrix, size, **flags) >= 0.5
        return colour, alpha, label


def composite(frame: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``frame`` (H, W, 3) uint8 with the occluder drawn over it (a new array)."""
    a = alpha[..., None]
    return np.round(frame * (1.0 - a) + colour * a).astype(np.uint8)


def cheek_colour(frame: np.ndarray, landmarks68: np.ndarray) -> tuple[int, int, int]:
    """The user's own skin tone (BGR): the median of a patch on each cheek, below the eyes."""
    face = FaceFrame.from_landmarks(landmarks68)
    r = max(2, int(face.iod * 0.12))
    samples = []
    for u in (-0.45, 0.45):
        x, y = np.round(face.point(u, 0.55)).astype(int)
        patch = frame[max(0, y - r):y + r, max(0, x - r):x + r].reshape(-1, 3)
        if len(patch):
            samples.append(patch)
    if not samples:
        return SKIN_TONES[2]
    return tuple(int(v) for v in np.median(np.vstack(samples), 0))


class OccluderTrack:
    """One kind of occluder over a whole clip: a new occluder (its own seed) every ``segment`` frames, each moving
    along its path over its segment. ``render(index, frame, landmarks68)`` -> (occluded frame, label) or None
    where there is no face."""

    def __init__(self, kind: str, *, seed: int = EVAL_SEED_BASE, segment: int = 40,
                 own_skin: tuple[int, int, int] | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown occluder kind {kind!r}; choose from {', '.join(KINDS)}")
        self.kind, self.seed, self.segment = kind, seed + 1000 * KINDS.index(kind), max(1, segment)
        self.skin = list(SKIN_TONES) + ([own_skin] if own_skin is not None else [])
        self._occluders: dict[int, Occluder] = {}

    def occluder(self, index: int) -> Occluder:
        k = index // self.segment
        if k not in self._occluders:
            self._occluders = {k: Occluder(self.kind, self.seed + k, self.skin)}
        return self._occluders[k]

    def render(self, index: int, frame: np.ndarray, landmarks68: np.ndarray | None):
        if landmarks68 is None:
            return None
        t = (index % self.segment) / max(1, self.segment - 1)
        colour, alpha, label = self.occluder(index).layer(FaceFrame.from_landmarks(landmarks68), t, frame.shape)
        return composite(frame, colour, alpha), label
