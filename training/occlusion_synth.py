"""Training data for the occlusion model: synthetic occluders pasted on aligned faces, with their masks.

This is the TRAINING family; ``measure/occluders.py`` (the evaluation family) shares no code, texture or
seed with it (see that module's docstring). Cut-and-paste occlusion data comes close to real labels for
face occlusion segmentation; here everything pasted is cut from, or coloured by, the training facesets
themselves or drawn procedurally:

- ``TextureBank``: patches cut from the NON-face parts of the training frames (backgrounds, clothes, hair:
  whatever lies outside the face box of the source image) plus procedural ones (noise, stripes, checks,
  gradients), and skin patches cut from the cheeks of training faces;
- occluder shapes: random smooth blobs; procedural hands (a convex palm, five fingers of one or two tapered
  quads, skin from another training face); superellipse glasses (lens exponent, size, frame thickness
  drawn from continuous ranges, tinted lenses with reflections, bridge and temples; the lens counts as the
  occluder); sticks with or without a head (pens, microphones, straps); rounded slabs and cylinders
  (phones, cups, cards); random-walk hair strands;
- as part of the FACE (unlabelled): side light, shadows and shine, and drawn moustaches and beards, so that
  neither a shadow nor a moustache is taken for an occluder.

``synthesize(face, aligned_landmarks, bank, rng)`` pastes 0-3 of them (placed mostly over the face) and
returns the image and the label at the crop's resolution; ``augment_and_resize`` then jitters alignment,
colour, blur, noise and JPEG like a webcam and resizes to the model's input. Every seed used for training
and validation is below ``TRAIN_SEED_LIMIT`` (the eval family's start at ``measure.occluders.EVAL_SEED_BASE``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

TRAIN_SEED_LIMIT = 1_000_000
KIND_WEIGHTS = {"hand": 0.26, "glasses": 0.2, "blob": 0.14, "stick": 0.13, "slab": 0.12, "hair": 0.15}
NO_OCCLUDER = 0.15  # share of samples with nothing pasted (the bare face teaches what is NOT an occluder)
FACIAL_HAIR = 0.25  # share of faces given a drawn moustache or beard, as face (not occluder)


def check_seed(seed: int) -> int:
    if not 0 <= seed < TRAIN_SEED_LIMIT:
        raise ValueError(f"training seeds are in [0, {TRAIN_SEED_LIMIT}) (above are the eval's), got {seed}")
    return seed


@dataclass
class TextureBank:
    """textures: (N, S, S, 3) uint8 patches from non-face parts of training frames and procedural ones;
    skins: (M, s, s, 3) uint8 cheek patches of training faces."""

    textures: np.ndarray
    skins: np.ndarray

    def texture(self, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
        """A (h, w, 3) texture for a shape of ``size`` = (w, h): a bank patch (70 %) or a procedural one."""
        w, h = size
        if rng.random() < 0.7 and len(self.textures):
            tex = self.textures[rng.integers(len(self.textures))]
            if rng.random() < 0.5:
                tex = tex[:, ::-1]
            return cv2.resize(tex, (w, h), interpolation=cv2.INTER_LINEAR)
        return procedural_texture(rng, (w, h))

    def skin(self, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
        """A skin-coloured (h, w, 3) texture: a cheek patch, tone-shifted a little."""
        w, h = size
        patch = self.skins[rng.integers(len(self.skins))].astype(np.float32)
        patch *= rng.uniform(0.8, 1.2) * rng.uniform(0.94, 1.06, 3)
        return np.clip(cv2.resize(patch, (w, h), interpolation=cv2.INTER_LINEAR), 0, 255).astype(np.uint8)

    def save(self, path) -> None:
        np.savez_compressed(path, textures=self.textures, skins=self.skins)

    @classmethod
    def load(cls, path) -> TextureBank:
        data = np.load(path)
        return cls(data["textures"], data["skins"])


def procedural_texture(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Noise, stripes, checks or a gradient in random colours, (h, w, 3) uint8."""
    w, h = size
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    kind = rng.integers(4)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:
        t = cv2.resize(rng.random((max(2, h // 8), max(2, w // 8))).astype(np.float32), (w, h))
    elif kind == 1:
        a, period = rng.uniform(0, math.pi), rng.uniform(3, 20)
        t = 0.5 + 0.5 * np.sign(np.sin((xx * math.cos(a) + yy * math.sin(a)) * 2 * math.pi / period))
    elif kind == 2:
        p = rng.uniform(4, 16)
        t = ((xx // p + yy // p) % 2).astype(np.float32)
    else:
        a = rng.uniform(0, 2 * math.pi)
        t = xx * math.cos(a) + yy * math.sin(a)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    img = c0 + (c1 - c0) * t[..., None]
    return np.clip(img + rng.normal(0, rng.uniform(0, 8), img.shape), 0, 255).astype(np.uint8)


def build_texture_bank(facesets, rng: np.random.Generator, *, per_source: int = 3, max_sources: int = 400,
                       size: int = 64, skin_size: int = 24) -> TextureBank:
    """Cut a ``TextureBank`` from the facesets: texture patches outside the face box of each source image
    (read again from the source file or video frame), skin from the cheeks of the aligned faces."""
    from realtime.face.alignment import eye_centres

    textures, skins = [], []
    records = [(fs, r) for fs in facesets for r in fs.records]
    order = rng.permutation(len(records))[:max_sources]
    videos: dict[str, cv2.VideoCapture] = {}
    for k in order:
        fs, rec = records[k]
        face = fs.load_image(rec)
        pts = rec.aligned_points()
        right, left = eye_centres(pts)
        iod = float(np.linalg.norm(left - right))
        for u in (-0.45, 0.45):  # cheeks: below the eyes, beside the nose
            c = (right + left) / 2 + np.array([u * iod, 0.6 * iod])
            half = max(3, int(0.14 * iod))
            x, y = int(c[0]), int(c[1])
            patch = face[max(0, y - half):y + half, max(0, x - half):x + half]
            if patch.shape[0] >= 4 and patch.shape[1] >= 4:
                skins.append(cv2.resize(patch, (skin_size, skin_size), interpolation=cv2.INTER_AREA))
        image = _source_image(rec, videos)
        if image is None:
            continue
        h, w = image.shape[:2]
        src = np.asarray(rec.landmarks, np.float64)
        (x0, y0), (x1, y1) = src.min(0), src.max(0)
        gx, gy = 0.25 * (x1 - x0), 0.45 * (y1 - y0)
        box = (x0 - gx, y0 - gy, x1 + gx, y1 + gy)
        for _ in range(per_source * 4):
            side = int(rng.uniform(0.08, 0.35) * min(h, w))
            px, py = int(rng.integers(0, max(1, w - side))), int(rng.integers(0, max(1, h - side)))
            if px + side > box[0] and px < box[2] and py + side > box[1] and py < box[3]:
                continue  # touches the face: not a texture
            textures.append(cv2.resize(image[py:py + side, px:px + side], (size, size), interpolation=cv2.INTER_AREA))
            if len(textures) % per_source == 0:
                break
    for cap in videos.values():
        cap.release()
    if not skins:
        raise ValueError("no faces to cut skin patches from")
    return TextureBank(np.stack(textures) if textures else np.zeros((0, size, size, 3), np.uint8), np.stack(skins))


def _source_image(rec, videos: dict) -> np.ndarray | None:
    """The source frame of a faceset record (a still, or a frame of a video), or None if unreadable."""
    from pathlib import Path

    path = Path(rec.source)
    if not path.is_file():
        return None
    if path.suffix.lower() in (".mp4", ".avi", ".mov", ".mkv", ".webm"):
        cap = videos.get(rec.source)
        if cap is None:
            cap = videos[rec.source] = cv2.VideoCapture(str(path))
        cap.set(cv2.CAP_PROP_POS_FRAMES, rec.frame)
        ok, frame = cap.read()
        return frame if ok else None
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


# -- shapes: each draws (colour, alpha, label) on an S x S layer ----------------------------------------
class _Layer:
    def __init__(self, size: int) -> None:
        self.s = size
        self.colour = np.zeros((size, size, 3), np.uint8)
        self.alpha = np.zeros((size, size), np.uint8)
        self.label = np.zeros((size, size), np.uint8)

    @staticmethod
    def _pts(points) -> list[np.ndarray]:
        return [np.round(np.asarray(points, np.float64) * 8).astype(np.int32)]

    def fill(self, points, fill: np.ndarray, alpha: int = 255, label: bool = True) -> None:
        """Fill a polygon with the (S, S, 3) image ``fill`` at ``alpha``."""
        m = np.zeros((self.s, self.s), np.uint8)
        cv2.fillPoly(m, self._pts(points), 255, cv2.LINE_AA, shift=3)
        self._put(m, fill, alpha, label)

    def stroke(self, points, width: float, fill: np.ndarray, closed: bool = False, alpha: int = 255,
               label: bool = True) -> None:
        m = np.zeros((self.s, self.s), np.uint8)
        cv2.polylines(m, self._pts(points), closed, 255, max(1, int(round(width))), cv2.LINE_AA, shift=3)
        self._put(m, fill, alpha, label)

    def _put(self, m: np.ndarray, fill: np.ndarray, alpha: int, label: bool) -> None:
        x, y, w, h = cv2.boundingRect(m)
        if w == 0 or h == 0:
            return
        box = (slice(y, y + h), slice(x, x + w))
        mb = m[box]
        a = mb.astype(np.float32)[..., None] / 255.0
        self.colour[box] = (fill[box] * a + self.colour[box] * (1 - a)).astype(np.uint8)
        np.maximum(self.alpha[box], (mb.astype(np.float32) * (alpha / 255.0)).astype(np.uint8), out=self.alpha[box])
        if label:
            np.maximum(self.label[box], mb, out=self.label[box])


def _shaded(img: np.ndarray, rng: np.random.Generator, strength: float = 0.25) -> np.ndarray:
    """A linear light gradient in a random direction over ``img``."""
    s = img.shape[0]
    a = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
    ramp = 1.0 + strength * ((xx - 0.5) * math.cos(a) + (yy - 0.5) * math.sin(a)) * 2
    return np.clip(img.astype(np.float32) * ramp[..., None], 0, 255).astype(np.uint8)


def _solid(rng: np.random.Generator, s: int, dark: bool = False) -> np.ndarray:
    colour = rng.uniform(0, 80 if dark else 255, 3)
    return np.broadcast_to(colour.astype(np.uint8), (s, s, 3)).copy()


def _fill_image(rng: np.random.Generator, bank: TextureBank, s: int) -> np.ndarray:
    img = bank.texture(rng, (s, s)) if rng.random() < 0.6 else _solid(rng, s)
    return _shaded(img, rng)


def _place(rng: np.random.Generator, geom: dict, s: int) -> np.ndarray:
    """Where to centre an occluder: mostly on a face landmark, sometimes anywhere."""
    if rng.random() < 0.8:
        p = geom["points"][rng.integers(len(geom["points"]))]
        return p + rng.normal(0, 0.15 * geom["iod"], 2)
    return rng.uniform(0, s, 2)


def blob(layer: _Layer, rng, bank, geom) -> None:
    s = layer.s
    c = _place(rng, geom, s)
    r = rng.uniform(0.1, 0.4) * s
    n = int(rng.integers(5, 14))
    ang = np.sort(rng.uniform(0, 2 * math.pi, n))
    rad = r * rng.uniform(0.5, 1.2, n)
    pts = np.stack([c[0] + rad * np.cos(ang), c[1] + rad * np.sin(ang)], 1)
    if rng.random() < 0.5:  # smooth the outline
        pts = cv2.approxPolyDP(pts.astype(np.float32), 0.5, True).reshape(-1, 2)
        pts = _chaikin(pts, 2)
    layer.fill(pts, _fill_image(rng, bank, s))


def _chaikin(pts: np.ndarray, rounds: int) -> np.ndarray:
    for _ in range(rounds):
        nxt = np.roll(pts, -1, 0)
        pts = np.stack([0.75 * pts + 0.25 * nxt, 0.25 * pts + 0.75 * nxt], 1).reshape(-1, 2)
    return pts


def hand(layer: _Layer, rng, bank, geom) -> None:
    """A convex palm with five fingers of tapered quads (one or two segments each), skin from the bank or, as
    often in life, the face's own (so that a skin tone unlike the face's is no cue)."""
    s, iod = layer.s, geom["iod"]
    scale = iod * rng.uniform(0.8, 1.25)
    own = geom.get("own_skin")
    if own is not None and rng.random() < 0.45:
        tone = own.astype(np.float32) * rng.uniform(0.85, 1.15) * rng.uniform(0.95, 1.05, 3)
        skin = np.clip(cv2.resize(tone, (s, s), interpolation=cv2.INTER_LINEAR), 0, 255).astype(np.uint8)
    else:
        skin = bank.skin(rng, (s, s))
    skin = _shaded(skin, rng, 0.3)
    c = _place(rng, geom, s)
    if rng.random() < 0.35:  # entering from a border
        c = c + (c - s / 2) * rng.uniform(0.3, 1.0)
    heading = rng.uniform(0, 2 * math.pi)
    d = np.array([math.cos(heading), math.sin(heading)])
    n = np.array([-d[1], d[0]])
    palm_w, palm_h = scale * rng.uniform(1.1, 1.5), scale * rng.uniform(1.0, 1.4)
    corners = [c + n * palm_w / 2 * sx + d * palm_h / 2 * sy for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    pts = np.array(corners) + rng.normal(0, 0.08 * scale, (4, 2))
    wrist = c - d * palm_h * rng.uniform(0.9, 1.8)
    pts = cv2.convexHull(np.vstack([pts, wrist + n * palm_w * 0.3, wrist - n * palm_w * 0.3]).astype(np.float32))
    layer.fill(pts.reshape(-1, 2), skin)
    crease = np.clip(skin.astype(np.float32) * 0.7, 0, 255).astype(np.uint8)
    fingers = int(rng.integers(3, 5)) + 1
    spread = rng.uniform(-0.15, 0.35)
    for k in range(fingers):
        thumb = k == fingers - 1 and fingers == 5
        if thumb:
            base = c - n * palm_w * 0.5 + d * palm_h * 0.05
            direction = heading - math.pi / 2 + rng.uniform(0.3, 1.1)
            length = scale * rng.uniform(0.5, 0.9)
        else:
            t = (k + 0.5) / (fingers - (1 if fingers == 5 else 0))
            base = c + n * palm_w * (t - 0.5) + d * palm_h * 0.48
            direction = heading + (t - 0.5) * spread * 2 + rng.normal(0, 0.05)
            length = scale * rng.uniform(0.25, 1.15)
        width = scale * rng.uniform(0.2, 0.3)
        segments = 2 if rng.random() < 0.5 else 1
        p = base
        for seg in range(segments):
            dd = np.array([math.cos(direction), math.sin(direction)])
            nn = np.array([-dd[1], dd[0]])
            q = p + dd * length / segments
            w0, w1 = width * (1 - 0.1 * seg) / 2, width * (0.88 - 0.1 * seg) / 2
            layer.fill([p + nn * w0, q + nn * w1, q - nn * w1, p - nn * w0], skin)
            layer.fill(_circle(q, w1), skin)
            p, direction = q, direction + rng.uniform(-0.5, 0.5)
        if rng.random() < 0.5:
            layer.stroke([base, p], 1, crease, label=False)


def _circle(c, r, n: int = 16) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([c[0] + r * np.cos(t), c[1] + r * np.sin(t)], 1)


def _superellipse(c, a, b, p, n: int = 40) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    ct, st = np.cos(t), np.sin(t)
    return np.stack([c[0] + a * np.sign(ct) * np.abs(ct) ** (2 / p), c[1] + b * np.sign(st) * np.abs(st) ** (2 / p)], 1)


def _metal(rng: np.random.Generator, s: int) -> np.ndarray:
    """A metallic fill: silver, grey or gold with a fine light ramp (thin wire frames)."""
    base = rng.choice([[200, 200, 205], [140, 140, 145], [90, 170, 210], [60, 60, 64]]).astype(np.float32)
    img = np.broadcast_to(base * rng.uniform(0.8, 1.15), (s, s, 3))
    return _shaded(np.clip(img, 0, 255).astype(np.uint8), rng, 0.4)


def glasses(layer: _Layer, rng, bank, geom) -> None:
    """Superellipse lenses on the eyes (tinted, a reflection), a frame, bridge and temples; lenses labelled.
    A third are thin wire frames (silver, grey, gold) with near-clear lenses and nose pads, some rimless."""
    s, iod = layer.s, geom["iod"]
    right, left = geom["eyes"]
    shift = rng.normal(0, 0.04 * iod, 2) + [0, rng.uniform(-0.05, 0.12) * iod]
    a, b, p = iod * rng.uniform(0.28, 0.5), iod * rng.uniform(0.2, 0.4), rng.uniform(1.6, 6.0)
    wire = rng.random() < 0.35
    if wire:
        thick = iod * rng.uniform(0.01, 0.035)
        frame = _metal(rng, s)
        lens_alpha = int(rng.uniform(0.02, 0.15) * 255)
    else:
        thick = iod * rng.uniform(0.015, 0.16)
        frame = (bank.texture(rng, (s, s)) * rng.uniform(0.3, 1.0)).astype(np.uint8) if rng.random() < 0.3 else \
            _solid(rng, s, dark=rng.random() < 0.6)
        lens_alpha = int(rng.uniform(0.05, 0.5) * 255)
    rimless = wire and rng.random() < 0.25
    tint = _solid(rng, s)
    lenses = [_superellipse(e + shift, a, b, p) for e in (right, left)]
    for lens in lenses:
        layer.fill(lens, tint, lens_alpha, label=True)
        if rng.random() < 0.6:  # a reflection: a bright band inside the lens
            lo, hi = lens.min(0), lens.max(0)
            x = rng.uniform(lo[0], hi[0])
            band = [[x, hi[1]], [x + 0.15 * iod, hi[1]], [x + 0.45 * iod, lo[1]], [x + 0.3 * iod, lo[1]]]
            m = np.zeros((s, s), np.uint8)
            cv2.fillPoly(m, layer._pts(lens), 255, shift=3)
            mb = np.zeros((s, s), np.uint8)
            cv2.fillPoly(mb, layer._pts(band), int(rng.uniform(40, 140)), cv2.LINE_AA, shift=3)
            mb = np.minimum(mb, m)
            a_ = mb.astype(np.float32)[..., None] / 255.0
            layer.colour = (255 * a_ + layer.colour * (1 - a_)).astype(np.uint8)
            layer.alpha = np.maximum(layer.alpha, mb)
    top_only = not wire and rng.random() < 0.15
    for lens, side in zip(lenses, (-1, 1)):
        if rimless:  # only the lens edge catches the light
            layer.stroke(lens, max(1.0, thick * 0.6), np.full((s, s, 3), 235, np.uint8), closed=True,
                             alpha=int(rng.uniform(60, 140)))
        else:
            outline = lens[lens[:, 1] <= lens[:, 1].mean()] if top_only else lens
            layer.stroke(outline[np.argsort(outline[:, 0])] if top_only else outline, thick, frame, closed=not top_only)
        outer = lens[np.argmax(side * (lens[:, 0] - lens[:, 0].mean()))]
        end = outer + np.array([side * iod * rng.uniform(0.3, 1.2), -rng.uniform(0, 0.2) * iod])
        layer.stroke([outer, end], thick * rng.uniform(0.8, 1.5), frame)
    inner = [lenses[0][np.argmax(lenses[0][:, 0])], lenses[1][np.argmin(lenses[1][:, 0])]]
    mid = (inner[0] + inner[1]) / 2 - [0, rng.uniform(0.0, 0.15) * iod]
    layer.stroke([inner[0], mid, inner[1]], thick, frame)
    if wire:  # nose pads
        for pt in inner:
            layer.fill(_circle(pt + [0, 0.12 * iod], 0.035 * iod, 10), _metal(rng, s), int(rng.uniform(120, 220)))


def stick(layer: _Layer, rng, bank, geom) -> None:
    """A long stick (pen, handle, strap), sometimes with a round head (a microphone); cylinder-shaded."""
    s, iod = layer.s, geom["iod"]
    c = _place(rng, geom, s)
    ang = rng.uniform(0, 2 * math.pi)
    d = np.array([math.cos(ang), math.sin(ang)])
    length, width = iod * rng.uniform(1.5, 5.0), iod * rng.uniform(0.08, 0.5)
    img = _fill_image(rng, bank, s)
    a, b = c - d * length * rng.uniform(0, 0.3), c + d * length
    n = np.array([-d[1], d[0]])
    taper = rng.uniform(0.6, 1.0)
    layer.fill([a + n * width / 2, b + n * width / 2 * taper, b - n * width / 2 * taper, a - n * width / 2], img)
    if rng.random() < 0.5:
        r = width * rng.uniform(0.9, 2.2)
        head = _fill_image(rng, bank, s)
        layer.fill(_circle(a - d * r * 0.6, r, 24), head)


def slab(layer: _Layer, rng, bank, geom) -> None:
    """A rounded rectangle (phone, card) or a cylinder side with an elliptic rim (cup, can, bottle)."""
    s, iod = layer.s, geom["iod"]
    c = _place(rng, geom, s)
    w, h = iod * rng.uniform(0.7, 1.8), iod * rng.uniform(1.0, 2.8)
    ang = rng.uniform(-0.6, 0.6) + (math.pi / 2 if rng.random() < 0.3 else 0)
    img = _fill_image(rng, bank, s)
    if rng.random() < 0.5:
        local = _superellipse((0, 0), w / 2, h / 2, rng.uniform(4, 12))
    else:
        top = _superellipse((0, -h / 2), w / 2, w * 0.12, 2, 20)
        bottom = _superellipse((0, h / 2), w / 2, w * 0.12, 2, 20)
        local = np.vstack([top[top[:, 1] <= -h / 2], bottom[bottom[:, 1] >= h / 2]])
        local = cv2.convexHull(local.astype(np.float32)).reshape(-1, 2)
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    layer.fill(local @ rot.T + c, img)
    if rng.random() < 0.3:  # a handle
        ring = _superellipse((w / 2 + 0.15 * iod, 0), 0.25 * iod, 0.3 * h, 2, 20)
        layer.stroke(ring @ rot.T + c, 0.1 * iod, img, closed=True)


def hair(layer: _Layer, rng, bank, geom) -> None:
    """Random-walk strands, mostly falling from the top over the forehead and eyes."""
    s, iod = layer.s, geom["iod"]
    hsv = np.array([[[rng.uniform(0, 25), rng.uniform(20, 200), rng.uniform(10, 230)]]], np.uint8)
    base = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)
    origin = geom["brows"] + [rng.uniform(-0.8, 0.8) * iod, -rng.uniform(0.2, 0.9) * iod]
    for _ in range(int(rng.integers(3, 40))):
        p = origin + rng.normal(0, 0.5 * iod, 2)
        heading = math.pi / 2 + rng.normal(0, 0.5)
        pts = [p]
        for _ in range(int(rng.integers(6, 20))):
            heading += rng.normal(0, 0.2)
            p = p + 0.12 * iod * np.array([math.cos(heading), math.sin(heading)])
            pts.append(p)
        colour = np.clip(base * rng.uniform(0.7, 1.3), 0, 255)
        fill = np.broadcast_to(colour.astype(np.uint8), (s, s, 3))
        layer.stroke(pts, rng.uniform(1.0, 3.0) * s / 128, fill, alpha=int(rng.uniform(200, 255)))


SHAPES = {"hand": hand, "glasses": glasses, "blob": blob, "stick": stick, "slab": slab, "hair": hair}


def face_geometry(aligned_landmarks: np.ndarray, face: np.ndarray | None = None) -> dict:
    """Eye centres, inter-ocular distance, brow centre, the points occluders are placed on (aligned px) and,
    given the face, a patch of its own cheek (``own_skin``)."""
    from realtime.face.alignment import eye_centres

    pts = np.asarray(aligned_landmarks, np.float64)
    right, left = eye_centres(pts)
    iod = float(np.linalg.norm(left - right))
    geom = {"eyes": (right, left), "iod": iod, "brows": pts[17:27].mean(0),
            "points": pts[np.r_[8, 30, 33, 36, 45, 48, 54, 57, 19, 24, 2, 14, 5, 11]]}
    if face is not None:
        c = (right + left) / 2 + np.array([0.45 * iod, 0.6 * iod])
        half = max(3, int(0.14 * iod))
        x, y = int(c[0]), int(c[1])
        patch = face[max(0, y - half):y + half, max(0, x - half):x + half]
        geom["own_skin"] = patch if patch.shape[0] >= 4 and patch.shape[1] >= 4 else None
    return geom


def _lighting(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unlabelled light on the face: a smooth gain field (side light, shadows), and sometimes a specular
    highlight or a soft cast shadow; none of it is an occluder."""
    s = image.shape[0]
    img = image.astype(np.float32)
    if rng.random() < 0.6:
        n = int(rng.integers(2, 5))
        gains = rng.uniform(0.55, 1.35, (n, n)).astype(np.float32)
        img *= cv2.resize(gains, (s, s), interpolation=cv2.INTER_CUBIC)[..., None]
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    for _ in range(int(rng.integers(0, 3))):
        cx, cy, r = rng.uniform(0.2, 0.8) * s, rng.uniform(0.2, 0.8) * s, rng.uniform(0.04, 0.2) * s
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
        if rng.random() < 0.5:
            img += blob * rng.uniform(30, 90)  # a shine on oily skin
        else:
            img *= 1 - blob * rng.uniform(0.2, 0.55)  # a soft shadow
    return np.clip(img, 0, 255).astype(np.uint8)


def facial_hair(image: np.ndarray, aligned_landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` with a drawn moustache (and sometimes its sides down to the jaw, a goatee or a beard) of dense
    short strokes: part of the face, NOT an occluder (so that a real moustache is not taken for hair strands)."""
    pts = np.asarray(aligned_landmarks, np.float64)
    s = image.shape[0]
    iod = float(np.linalg.norm(pts[36:42].mean(0) - pts[42:48].mean(0)))
    zones = [np.vstack([pts[31:36], pts[54], pts[53:48:-1], pts[48]])]  # nose base to the upper lip
    if rng.random() < 0.4:  # the sides, down past the mouth corners
        zones += [np.vstack([pts[48], pts[59], pts[5] * 0.35 + pts[48] * 0.65, pts[48] + [-0.12 * iod, 0]]),
                  np.vstack([pts[54], pts[55], pts[11] * 0.35 + pts[54] * 0.65, pts[54] + [0.12 * iod, 0]])]
    if rng.random() < 0.3:  # a goatee or a full beard
        zones.append(np.vstack([pts[57], pts[58], pts[6], pts[7], pts[8], pts[9], pts[10], pts[56]]) if rng.random() < 0.5
                     else np.vstack([pts[3:14], pts[54], pts[57], pts[48]]))
    zone = np.zeros((s, s), np.uint8)
    for z in zones:
        cv2.fillPoly(zone, [np.round(z * 8).astype(np.int32)], 255, cv2.LINE_AA, shift=3)
    ys, xs = np.nonzero(zone)
    if not len(xs):
        return image
    hsv = np.array([[[rng.uniform(0, 25), rng.uniform(10, 150), rng.uniform(10, 140)]]], np.uint8)
    base = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)
    hair = np.zeros((s, s), np.uint8)
    colour = np.zeros_like(image)
    for _ in range(int(len(xs) * rng.uniform(0.3, 0.9))):
        k = rng.integers(len(xs))
        a = rng.normal(math.pi / 2, 0.5) * (1 if xs[k] > pts[51, 0] else -1) + (0 if xs[k] > pts[51, 0] else math.pi)
        length = rng.uniform(0.04, 0.12) * iod
        p0 = (xs[k], ys[k])
        p1 = (int(xs[k] + length * math.cos(a)), int(ys[k] + length * math.sin(a)))
        tone = tuple(int(v) for v in np.clip(base * rng.uniform(0.7, 1.3), 0, 255))
        cv2.line(colour, p0, p1, tone, 1, cv2.LINE_AA)
        cv2.line(hair, p0, p1, int(rng.uniform(150, 255)), 1, cv2.LINE_AA)
    colour = cv2.GaussianBlur(colour, (3, 3), 0)
    hair = cv2.GaussianBlur(hair, (3, 3), 0)
    a_ = (np.minimum(hair.astype(np.float32) * 1.6, cv2.GaussianBlur(zone, (5, 5), 0)) / 255.0)[..., None]
    return (colour * a_ + image * (1 - a_)).astype(np.uint8)


def synthesize(face: np.ndarray, aligned_landmarks: np.ndarray, bank: TextureBank,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``face`` (S, S, 3) uint8 with 0-3 synthetic occluders pasted on it -> (image, label (S, S) float32 in [0, 1])."""
    s = face.shape[0]
    image = _lighting(face, rng) if rng.random() < 0.5 else face.copy()
    if rng.random() < FACIAL_HAIR:
        image = facial_hair(image, aligned_landmarks, rng)
    label = np.zeros((s, s), np.float32)
    if rng.random() < NO_OCCLUDER:
        return image, label
    geom = face_geometry(aligned_landmarks, image)
    kinds, weights = list(KIND_WEIGHTS), np.array(list(KIND_WEIGHTS.values()))
    for _ in range(int(rng.choice([1, 1, 1, 2, 2, 3]))):
        layer = _Layer(s)
        SHAPES[kinds[rng.choice(len(kinds), p=weights / weights.sum())]](layer, rng, bank, geom)
        if rng.random() < 0.3:  # soft edges: motion or focus blur
            k = int(rng.integers(1, 3)) * 2 + 1
            layer.colour = cv2.GaussianBlur(layer.colour, (k, k), 0)
            layer.alpha = cv2.GaussianBlur(layer.alpha, (k, k), 0)
        a = layer.alpha.astype(np.float32)[..., None] / 255.0
        image = (layer.colour * a + image * (1 - a)).astype(np.uint8)
        label = np.maximum(label, layer.label.astype(np.float32) / 255.0)
    return image, label


def augment_and_resize(image: np.ndarray, label: np.ndarray, ignore: np.ndarray | None, size: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Webcam-like jitter, then the model's input size: (image (size, size, 3) uint8, target (size, size)
    float32, weight (size, size) float32). The target is 1 where an occluder covers at least 40 % of a pixel
    (thin strands and frames must survive the downscale); weight 0 where ``ignore`` says so."""
    s = image.shape[0]
    weight = np.ones((s, s), np.float32) if ignore is None else 1.0 - ignore
    ang, sc = rng.normal(0, 6), rng.uniform(0.9, 1.12)
    m = cv2.getRotationMatrix2D((s / 2, s / 2), ang, sc)
    m[:, 2] += rng.normal(0, 0.04 * s, 2)
    if rng.random() < 0.5:
        m = np.array([[-1, 0, s - 1], [0, 1, 0]], np.float64) @ np.vstack([m, [0, 0, 1]])
    image = cv2.warpAffine(image, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    label = cv2.warpAffine(label, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    weight = cv2.warpAffine(weight, m, (s, s), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)
    img = image.astype(np.float32)
    if rng.random() < 0.08:
        img = np.repeat(img.mean(2, keepdims=True), 3, 2)
    img = img * rng.uniform(0.7, 1.3) * rng.uniform(0.85, 1.15, 3) + rng.uniform(-25, 25)
    mean = img.mean()
    img = (img - mean) * rng.uniform(0.7, 1.3) + mean
    if rng.random() < 0.3:  # gamma: dark or washed-out webcams
        img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** rng.uniform(0.7, 1.5)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.3))
    if rng.random() < 0.5:
        img += rng.normal(0, rng.uniform(1, 7), img.shape)
    image = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        ok, enc = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 95))])
        image = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    interp = cv2.INTER_AREA if rng.random() < 0.8 else cv2.INTER_LINEAR
    image = cv2.resize(image, (size, size), interpolation=interp)
    coverage = cv2.resize(label, (size, size), interpolation=cv2.INTER_AREA)
    target = np.clip(coverage * 2.5, 0.0, 1.0)
    weight = cv2.resize(weight, (size, size), interpolation=cv2.INTER_AREA)
    return image, target, weight
