"""The full 478-point MediaPipe mesh of every face of a faceset, in aligned pixels, cached beside it.

The faceset manifest keeps the 68 landmarks a DeepFaceLab-style trainer needs. The reference-prior
models (``training.prior``) also need the dense mesh, to warp the target's reference face onto each
training face exactly as the live loop warps it onto the user's face. The mesh is found on the
aligned crop itself (the same FaceMesh, in still mode) and kept in ``FACESET/mesh_cache.npz``
(file names and a (N, 478, 2) float32 array); faces added later are meshed on the next call, faces
whose crop yields no mesh are recorded as missing (NaN) and left out of prior training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.faceset import Faceset

CACHE_NAME = "mesh_cache.npz"
MESH_POINTS = 478


def _mesh_of_crop(landmarker, crop: np.ndarray) -> np.ndarray | None:
    """(478, 2) float32 mesh of the largest face of an aligned crop, or None."""
    faces = landmarker.detect(crop)
    if not faces:
        return None
    return max(faces, key=lambda f: f.size).points.astype(np.float32)


def faceset_meshes(faceset: Faceset, progress: bool = True) -> dict[str, np.ndarray]:
    """{image file name: (478, 2) float32 aligned-pixel mesh} for every face a mesh was found for."""
    from tqdm import tqdm

    from realtime.util.atomic_files import atomic_path
    from realtime.face.landmarks import FaceLandmarker

    cache = Path(faceset.path) / CACHE_NAME
    known: dict[str, np.ndarray] = {}
    if cache.exists():
        with np.load(cache) as data:
            known = dict(zip(data["files"].tolist(), data["meshes"]))
    todo = [r for r in faceset.records if r.file not in known]
    if todo:
        # video mode: aligned crops put every face in the same place, so tracking holds and it is ~3x faster
        with FaceLandmarker(static_images=False, max_faces=1) as landmarker:
            for rec in tqdm(todo, desc=f"mesh {faceset.path.name}", unit="face", disable=not progress):
                mesh = _mesh_of_crop(landmarker, faceset.load_image(rec))
                known[rec.file] = mesh if mesh is not None else np.full((MESH_POINTS, 2), np.nan, np.float32)
        files = sorted(known)
        with atomic_path(cache) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, files=np.array(files), meshes=np.stack([known[f] for f in files]))
    wanted = {r.file for r in faceset.records}
    return {f: m for f, m in known.items() if f in wanted and np.isfinite(m).all()}
