"""Training samples from a src and a dst faceset, with DeepFaceLab-style augmentation.

Every sample index ``i`` owns its random generator (seeded by ``(seed, i)``), so a run that resumes
at step k draws exactly the samples it would have drawn, whichever worker process makes them.

One face becomes: the target (random affine: rotation, scale, shift, optional flip; colour jitter;
for src, optionally RCT colour transfer toward a random dst face), the input (the target plus a
random grid warp: the input is warped, the target is not), the face mask (landmark hull) and the
eyes/mouth mask, both from the aligned landmarks through ``realtime.face.alignment``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from realtime.face.alignment import eyes_mouth_mask, hull_mask
from realtime.merging.color_transfer import rct
from training.faceset import Faceset, FacesetError


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation settings (DeepFaceLab's defaults where it has them)."""

    random_warp: bool = True
    rotation_deg: float = 10.0
    scale: float = 0.05
    shift: float = 0.05
    flip: bool = False
    hsv_jitter: bool = True
    hue: float = 0.03  # fraction of the hue circle
    saturation: float = 0.15
    value: float = 0.15
    color_transfer: float = 0.5  # probability of RCT of a src face toward a random dst face

    @classmethod
    def off(cls) -> AugmentConfig:
        """No augmentation: target and input are the faceset image (for previews and evaluation)."""
        return cls(random_warp=False, rotation_deg=0, scale=0, shift=0, flip=False, hsv_jitter=False, color_transfer=0)


def open_facesets(src: str | Path, dst: str | Path) -> tuple[Faceset, Faceset]:
    """Open both facesets and check they can be trained together; FacesetError says what is wrong."""
    fs = []
    for role, path in (("src", src), ("dst", dst)):
        faceset = Faceset.open(path)
        if len(faceset) == 0:
            raise FacesetError(f"{role} faceset {path} holds no faces; extract some with `swapcam extract ... --out {path}`")
        fs.append(faceset)
    a, b = fs
    if a.face_type != b.face_type:
        raise FacesetError(f"src faceset is {a.face_type}, dst faceset is {b.face_type}: extract both with the same --face-type")
    if a.crop_scale != b.crop_scale:
        raise FacesetError(f"src faceset has crop scale {a.crop_scale:g}, dst faceset {b.crop_scale:g}: extract both "
                           "with the same --crop-scale")
    if a.resolution != b.resolution:
        raise FacesetError(f"src faceset is {a.resolution} px, dst faceset is {b.resolution} px: extract both at the same --size")
    return a, b


def faceset_summary(role: str, faceset: Faceset) -> dict:
    """What the exported model's metadata records about a faceset it was trained on."""
    sources = sorted({Path(r.source).name for r in faceset.records})
    return {"role": role, "faceset": faceset.path.name, "faces": len(faceset), "resolution": faceset.resolution,
            "face_type": faceset.face_type, "crop_scale": faceset.crop_scale, "sources": sources}


def random_affine(rng: np.random.Generator, size: int, aug: AugmentConfig) -> tuple[np.ndarray, bool]:
    """2x3 matrix of a random rotation/scale/shift about the centre, and whether to flip."""
    angle = rng.uniform(-aug.rotation_deg, aug.rotation_deg)
    scale = 1.0 + rng.uniform(-aug.scale, aug.scale)
    mat = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    mat[:, 2] += rng.uniform(-aug.shift, aug.shift, 2) * size
    return mat, bool(aug.flip and rng.random() < 0.5)


def random_warp_maps(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """DeepFaceLab-style random warp: a coarse grid (cell of size/2, /4 or /8) jittered by
    N(0, 0.24 cell) at inner points, upsampled smoothly into float32 remap maps."""
    cell = size // (2 ** int(rng.integers(1, 4)))
    n = size // cell + 1
    grid = np.linspace(0, size, n, dtype=np.float32)
    mapx = np.broadcast_to(grid, (n, n)).copy()
    mapy = mapx.T.copy()
    mapx[1:-1, 1:-1] += rng.normal(0, cell * 0.24, (n - 2, n - 2)).astype(np.float32)
    mapy[1:-1, 1:-1] += rng.normal(0, cell * 0.24, (n - 2, n - 2)).astype(np.float32)
    half = cell // 2
    full = size + cell
    mapx = cv2.resize(mapx, (full, full), interpolation=cv2.INTER_CUBIC)[half:half + size, half:half + size]
    mapy = cv2.resize(mapy, (full, full), interpolation=cv2.INTER_CUBIC)[half:half + size, half:half + size]
    return mapx.astype(np.float32), mapy.astype(np.float32)


def hsv_draw(rng: np.random.Generator, aug: AugmentConfig) -> tuple[float, float, float]:
    """A random (hue shift in degrees, saturation gain, value gain) within ``aug``'s ranges."""
    hue = rng.uniform(-aug.hue, aug.hue) * 360.0
    sat = 1 + rng.uniform(-aug.saturation, aug.saturation)
    val = 1 + rng.uniform(-aug.value, aug.value)
    return hue, sat, val


def hsv_apply(img: np.ndarray, jitter: tuple[float, float, float]) -> np.ndarray:
    """``hsv_draw``'s hue shift and saturation/value gains applied to a float32 BGR [0,1] image."""
    hue, sat, val = jitter
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)  # H in [0, 360)
    hsv[..., 0] = (hsv[..., 0] + hue) % 360.0
    hsv[..., 1] = np.clip(hsv[..., 1] * sat, 0, 1)
    hsv[..., 2] = np.clip(hsv[..., 2] * val, 0, 1)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def hsv_jitter(img: np.ndarray, rng: np.random.Generator, aug: AugmentConfig) -> np.ndarray:
    """Random hue shift and saturation/value gain of a float32 BGR [0,1] image."""
    return hsv_apply(img, hsv_draw(rng, aug))


class FaceSource:
    """One faceset's faces, images resized to the training resolution, with their masks."""

    def __init__(self, faceset: Faceset, resolution: int) -> None:
        self.faceset, self.resolution = faceset, resolution
        self.records = faceset.records
        self.scale = resolution / faceset.resolution

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image float32 BGR [0,1] (R,R,3), hull mask (R,R), eyes/mouth mask (R,R))."""
        rec = self.records[index]
        img = self.faceset.load_image(rec)
        if img.shape[0] != self.resolution:
            img = cv2.resize(img, (self.resolution, self.resolution), interpolation=cv2.INTER_AREA)
        pts = rec.aligned_points() * self.scale
        return img.astype(np.float32) / 255.0, hull_mask(pts, self.resolution), eyes_mouth_mask(pts, self.resolution)


def make_sample(img: np.ndarray, mask: np.ndarray, em: np.ndarray, rng: np.random.Generator,
                aug: AugmentConfig, prior: np.ndarray | None = None,
                source: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Augment one face: target (affine, colour), input (target + random warp), masks (affine), and
    the reference prior (float32 BGR, the reference warped onto this face) moved with the target.

    source: the input's picture when it is not the target itself (same geometry, float32 BGR; e.g. the
    face with another person's skin pasted on, ``training.identity_pool``): it gets the target's colour
    jitter, affine and flip, then the random warp."""
    size = img.shape[0]
    if aug.hsv_jitter:
        jitter = hsv_draw(rng, aug)
        img = hsv_apply(img, jitter)
        source = None if source is None else hsv_apply(source, jitter)
    mat, flip = random_affine(rng, size, aug)
    warp = lambda a: cv2.warpAffine(a, mat, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # noqa: E731
    target, mask, em = warp(img), warp(mask), warp(em)
    if prior is not None:
        prior = warp(prior)
    inp = target if source is None else warp(source)
    if flip:
        target, mask, em, inp = target[:, ::-1], mask[:, ::-1], em[:, ::-1], inp[:, ::-1]
        prior = None if prior is None else prior[:, ::-1]
    if aug.random_warp:
        mapx, mapy = random_warp_maps(rng, size)
        inp = cv2.remap(np.ascontiguousarray(inp), mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    chw = lambda a: np.ascontiguousarray(a.transpose(2, 0, 1) if a.ndim == 3 else a[None])  # noqa: E731
    sample = {"input": chw(inp), "target": chw(target), "mask": chw(mask), "em": chw(em)}
    if prior is not None:
        sample["prior"] = chw(prior)
    return sample


class PriorSource:
    """The reference prior of each src face that has a mesh: ``prior(index)`` -> (R, R, 3) float32 BGR.

    reference: the target's reference face (``training.prior.Reference``); meshes: {file: (478, 2)}
    aligned-pixel meshes of the src faceset at its own resolution (``training.faceset_mesh``).
    """

    def __init__(self, source: FaceSource, reference, meshes: dict[str, np.ndarray]) -> None:
        from realtime.swap.reference_prior import ReferencePrior

        self.source = source
        self.warp = ReferencePrior(reference, source.resolution)
        self.indices = np.array([i for i, r in enumerate(source.records) if r.file in meshes], np.int64)
        if len(self.indices) == 0:
            raise FacesetError("no src face has a mesh: the reference prior cannot be built")
        self.meshes = meshes

    def __call__(self, index: int) -> np.ndarray:
        mesh = self.meshes[self.source.records[index].file] * np.float32(self.source.scale)
        return self.warp(mesh).astype(np.float32) * np.float32(1.0 / 255.0)


class PairDataset(Dataset):
    """Sample ``i`` -> a random src face and a random dst face, augmented. Infinite by design:
    the sampler decides which indices (steps) are drawn."""

    def __init__(self, src: Faceset, dst: Faceset | None, resolution: int, aug: AugmentConfig, seed: int = 0,
                 reference=None, src_meshes: dict[str, np.ndarray] | None = None, skins=None,
                 cross_identity: float = 0.0) -> None:
        """reference, src_meshes: for prior models, the target's reference face and the src meshes.
        dst None: src samples only (a fine-tune from a base whose dst side is frozen; no colour transfer).
        skins (``training.skin_pool.SkinDonors``), cross_identity: that fraction of src inputs wear a donor's
        pasted skin (``training.identity_pool.paste_skin``) while the target stays the real face."""
        self.src = FaceSource(src, resolution)
        self.dst = FaceSource(dst, resolution) if dst is not None else None
        self.aug, self.seed = aug, seed
        self.prior = PriorSource(self.src, reference, src_meshes or {}) if reference is not None else None
        self.skins, self.cross_identity = (skins, cross_identity) if reference is not None else (None, 0.0)
        prior = self.prior
        # with a prior, src faces are drawn among those whose mesh is known (the prior needs it)
        self._src_pool = prior.indices if prior is not None else None

    def _src_index(self, rng: np.random.Generator) -> int:
        if self._src_pool is None:
            return int(rng.integers(len(self.src)))
        return int(self._src_pool[int(rng.integers(len(self._src_pool)))])

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(i)])
        s_index = self._src_index(rng)
        s_img, s_mask, s_em = self.src.load(s_index)
        if self.dst is not None and self.aug.color_transfer > 0 and rng.random() < self.aug.color_transfer:
            ref, ref_mask, _ = self.dst.load(int(rng.integers(len(self.dst))))
            s_img = rct(s_img, ref, image_mask=s_mask, reference_mask=ref_mask)
        s_prior = self.prior(s_index) if self.prior is not None else None
        s_source = None
        if self.skins is not None and self.cross_identity > 0 and rng.random() < self.cross_identity:
            from training.identity_pool import paste_skin

            mesh = self.prior.meshes[self.src.records[s_index].file] * np.float32(self.src.scale)
            s_source = paste_skin(s_img, mesh, *self.skins.draw(rng))
        sides = [("src", (s_img, s_mask, s_em, s_prior, s_source))]
        if self.dst is not None:
            d_img, d_mask, d_em = self.dst.load(int(rng.integers(len(self.dst))))
            sides.append(("dst", (d_img, d_mask, d_em, None, None)))
        out = {}
        for role, (img, mask, em, prior, source) in sides:
            for key, value in make_sample(img, mask, em, rng, self.aug, prior, source).items():
                out[f"{role}_{key}"] = torch.from_numpy(value)
        return out

    def fixed_batch(self, count: int) -> dict[str, torch.Tensor]:
        """The first ``count`` faces of each side, unaugmented (previews, evaluation)."""
        out: dict[str, list] = {}
        for role, source in (("src", self.src), ("dst", self.dst)):
            if source is None:
                continue
            pool = self._src_pool if role == "src" and self._src_pool is not None else np.arange(len(source))
            for k in range(count):
                index = int(pool[k * len(pool) // count])
                img, mask, em = source.load(index)
                prior = self.prior(index) if role == "src" and self.prior is not None else None
                for key, value in make_sample(img, mask, em, np.random.default_rng(0), AugmentConfig.off(), prior).items():
                    out.setdefault(f"{role}_{key}", []).append(torch.from_numpy(value))
        return {k: torch.stack(v) for k, v in out.items()}


class StepSampler(Sampler[int]):
    """Indices for steps ``start, start+1, ...``: step s of rank r draws samples
    ``(s * world + r) * batch + j``, so every rank draws different samples and a resumed run
    draws the same ones as an uninterrupted run."""

    def __init__(self, start_step: int, batch_size: int, rank: int = 0, world: int = 1) -> None:
        self.start, self.batch, self.rank, self.world = start_step, batch_size, rank, world

    def __iter__(self):
        step = self.start
        while True:
            base = (step * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)
            step += 1
