"""Other people's skin for a fine-tune from the base: the anti-copy samples of pretraining, without its data.

The base's target decoder learnt to take identity from the reference because, in half its samples, the input
face wore another person's pasted skin (``training.identity_pool.paste_skin``) while the target was the real
face. A fine-tune on one new person without that drifts back toward copying its input (docs/base.md). The
user has only the new person's faces and the base, so the donors come from the user's own ``--dst`` faces, from
``--skin FACES``, or from a small set of consented faces built by ``make base-skins`` (``models/base/skins/``: a
faceset with its meshes, credited there; not shipped, since pasted skin did not pay).

``SkinDonors`` holds the donor crops and meshes at the training resolution and hands out a random donor
(crop, mesh warp); ``python -m training.skin_pool build FACESET... --out DIR`` makes a donor pool.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np

from realtime.swap.mesh_warp import MeshWarp
from training.faceset import MANIFEST_NAME, Faceset, FacesetError

DEFAULT_SKINS = Path(__file__).resolve().parents[1] / "models" / "base" / "skins"


class SkinDonors:
    """Donor faces for pasted skin: (N, R, R, 3) uint8 BGR crops and their (478, 2) meshes in aligned pixels at
    the training resolution R. ``draw(rng)`` -> (crop, MeshWarp) of a random donor; a donor's warp is built
    once (about 70 ms, more than the rest of a sample) and kept."""

    def __init__(self, crops: list[np.ndarray], meshes: list[np.ndarray], resolution: int) -> None:
        if not crops:
            raise FacesetError("no donor face with a mesh: pasted skin needs at least one")
        self.crops, self.meshes, self.resolution = crops, meshes, resolution
        self._warps: dict[int, MeshWarp] = {}

    def __len__(self) -> int:
        return len(self.crops)

    @classmethod
    def open(cls, facesets: list[str | Path], resolution: int, face_type: str, crop_scale: float,
             progress: bool = False) -> SkinDonors:
        """Every face with a mesh of ``facesets`` (meshes found once and cached beside each faceset), resized
        to ``resolution``; the facesets must be cut like the training faces (face type, crop scale)."""
        from training.faceset_mesh import faceset_meshes

        crops, meshes = [], []
        for path in facesets:
            fs = Faceset.open(path)
            if (fs.face_type, fs.crop_scale) != (face_type, crop_scale):
                raise FacesetError(f"skin donors {path}: {fs.face_type} faces at crop scale {fs.crop_scale:g}; the "
                                   f"model is trained on {face_type} at {crop_scale:g}")
            found = faceset_meshes(fs, progress=progress)
            scale = np.float32(resolution / fs.resolution)
            for rec in fs.records:
                if rec.file not in found:
                    continue
                img = fs.load_image(rec)
                if img.shape[0] != resolution:
                    img = cv2.resize(img, (resolution, resolution), interpolation=cv2.INTER_AREA)
                crops.append(img)
                meshes.append(found[rec.file] * scale)
        return cls(crops, meshes, resolution)

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, MeshWarp]:
        k = int(rng.integers(len(self.crops)))
        if k not in self._warps:
            self._warps[k] = MeshWarp(self.meshes[k], self.resolution)
        return self.crops[k], self._warps[k]


def build(facesets: list[str], out: Path, pattern: str = "", quality: int = 90) -> int:
    """Copy the faces of ``facesets`` whose file name matches the regular expression ``pattern`` into a new faceset ``out`` (JPEG
    ``quality``), sources reduced to their file names, with their meshes; returns the number of faces."""
    from realtime.util.atomic_files import atomic_path, write_image, write_text
    from training.faceset_mesh import CACHE_NAME, faceset_meshes

    if out.exists() and any(out.iterdir()):
        raise FacesetError(f"{out} exists and is not empty")
    first = Faceset.open(facesets[0])
    target = Faceset.create(out, first.resolution, first.face_type, first.crop_scale)
    files, meshes = [], []
    lines = []
    for path in facesets:
        fs = Faceset.open(path)
        if (fs.resolution, fs.face_type, fs.crop_scale) != (first.resolution, first.face_type, first.crop_scale):
            raise FacesetError(f"{path} is cut otherwise than {facesets[0]}")
        found = faceset_meshes(fs, progress=False)
        for rec in fs.records:
            if not re.search(pattern, rec.file) or rec.file not in found:
                continue
            write_image(out / rec.file, fs.load_image(rec), [cv2.IMWRITE_JPEG_QUALITY, quality])
            lines.append(replace(rec, source=Path(rec.source).name).to_json())
            files.append(rec.file)
            meshes.append(found[rec.file])
    with atomic_path(out / CACHE_NAME) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, files=np.array(files), meshes=np.stack(meshes).astype(np.float32))
    write_text(out / MANIFEST_NAME, "\n".join([json.dumps(asdict(target.header)), *lines]) + "\n")
    return len(files)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.skin_pool", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="make a shipped pool of skin donors from facesets")
    b.add_argument("facesets", nargs="+")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--pattern", default="", help="keep faces whose file name matches this regular expression (e.g. '_03-': London's neutral stills)")
    b.add_argument("--quality", type=int, default=90, help="JPEG quality")
    args = p.parse_args(argv)
    try:
        n = build(args.facesets, args.out, args.pattern, args.quality)
    except FacesetError as exc:
        print(f"skin_pool: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {n} faces, {sum(f.stat().st_size for f in args.out.iterdir()) / 2**20:.2f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
