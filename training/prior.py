"""Training side of the reference prior (``realtime.swap.reference_prior``): choosing the reference face
from the src faceset, keeping it in the run folder, and priors for preview faces.

The warp carries the target's sharp texture into each face's pose and expression; the src decoder
learns what a warp cannot do (an open mouth, eyes, lighting).
"""

from __future__ import annotations

import numpy as np

from realtime.swap.reference_prior import Reference, ReferencePrior, mouth_openness


def choose_reference(faceset, meshes: dict[str, np.ndarray]) -> Reference:
    """The src face that makes the best reference: frontal, mouth closed, sharp (scores in that order).

    faceset: a ``training.faceset.Faceset``; meshes: {file: (478, 2)} from ``faceset_meshes``.
    """
    records = [r for r in faceset.records if r.file in meshes]
    if not records:
        raise ValueError(f"no face of {faceset.path} has a mesh: cannot choose a reference")
    sharp = np.array([r.sharpness or 0.0 for r in records], np.float64)
    sharp_rank = sharp.argsort().argsort() / max(len(records) - 1, 1)  # 0 softest .. 1 sharpest
    scores = []
    for rec, rank in zip(records, sharp_rank):
        turn = abs(rec.yaw or 0.0) + abs(rec.pitch or 0.0) + abs(rec.roll or 0.0)  # degrees
        scores.append(turn + 100.0 * mouth_openness(meshes[rec.file]) + 5.0 * (1.0 - rank))
    best = records[int(np.argmin(scores))]
    return Reference(faceset.load_image(best), meshes[best.file], f"{faceset.path.name}/{best.file}")


REFERENCE_FILE = "reference.npz"


def save_reference(run_dir, reference: Reference) -> None:
    """Keep a run's reference in ``RUN_DIR/reference.npz`` (atomically): resume and export read it."""
    from pathlib import Path

    from realtime.util.atomic_files import atomic_path

    with atomic_path(Path(run_dir) / REFERENCE_FILE) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, image=reference.image, mesh=reference.mesh, source=np.array(reference.source))


def load_reference(run_dir) -> Reference | None:
    """The reference saved in ``run_dir``, or None when it holds none."""
    from pathlib import Path

    path = Path(run_dir) / REFERENCE_FILE
    if not path.exists():
        return None
    with np.load(path) as data:
        return Reference(data["image"], data["mesh"].astype(np.float32), str(data["source"]))


def dst_priors(reference: Reference, faces: np.ndarray) -> np.ndarray:
    """The reference warped onto each of ``faces`` ((N, R, R, 3) uint8 aligned crops, meshed here with
    FaceMesh in still mode): (N, R, R, 3) uint8; a face without a mesh gets the unwarped reference, and so
    do all of them where MediaPipe is not installed (a GPU machine: these are only the preview's)."""
    warp = ReferencePrior(reference, faces.shape[1])
    try:
        from realtime.face.landmarks import FaceLandmarker

        import mediapipe  # noqa: F401  (imported by FaceLandmarker when made; checked here)
    except ImportError:
        return np.repeat(warp.image[None], len(faces), 0)
    out = np.empty_like(faces)
    with FaceLandmarker(static_images=True) as landmarker:
        for i, face in enumerate(faces):
            found = landmarker.detect(face)
            out[i] = warp(max(found, key=lambda f: f.size).points) if found else warp.image
    return out
