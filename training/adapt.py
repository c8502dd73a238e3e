"""Faces in the shape a model needs: a faceset re-cut to another face type and size, or videos and photos
extracted first.

A base (or the from-scratch recipe) trains on one face type at one size, while a user's faceset is made
by `swapcam extract` with its defaults (whole_face, 256 px). Every face record keeps its 68 landmarks in
source pixels, so the crop the model needs is ``align_matrix(landmarks, size, face_type)``, and its
pixels are the faceset image resampled through ``new_matrix @ inverse(old_matrix)``: no source video is
needed, as long as the old crop holds the new one (whole_face and head hold full; half does not).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from realtime.face.alignment import align_matrix, compose, invert, transform_points
from training.faceset import Faceset, FacesetError, round_points

# a face whose new crop reaches more than this share of its side outside the old crop cannot be re-cut
OUTSIDE_TOLERANCE = 0.03
# re-cutting is refused when more than this share of the faces cannot be re-cut
MAX_UNFIT_SHARE = 0.05


def recut_matrix(record, face_type: str, size: int, crop_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(source -> new aligned 2x3, old aligned -> new aligned 2x3) for one face record."""
    new = align_matrix(np.asarray(record.landmarks, np.float64), size, face_type, crop_scale)
    return new, compose(new, invert(np.asarray(record.matrix, np.float64)))


def fits(old_to_new: np.ndarray, old_size: int, size: int) -> bool:
    """Whether the new crop's corners lie inside the old crop (within OUTSIDE_TOLERANCE of its side)."""
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64)
    back = transform_points(corners, invert(old_to_new))
    margin = OUTSIDE_TOLERANCE * old_size
    return bool((back >= -margin).all() and (back <= old_size + margin).all())


def recut_faceset(faceset: Faceset, out: Path, face_type: str, size: int, crop_scale: float = 1.0,
                  progress: bool = True) -> Faceset:
    """``faceset`` re-cut to ``face_type`` at ``size`` px into ``out`` (resumes: faces already there are kept).

    Raises FacesetError when the old crops do not hold the new ones (e.g. a half-face faceset for a full-face
    model): then the faces must be extracted again from their videos or photos."""
    from tqdm import tqdm

    new_fs = Faceset.create(out, size, face_type, crop_scale)
    done = {r.file for r in new_fs.records}
    unfit = 0
    todo = [r for r in faceset.records if r.file not in done]
    for rec in tqdm(todo, desc=f"re-cut {faceset.path.name} to {face_type} {size} px", unit="face", disable=not progress):
        matrix, old_to_new = recut_matrix(rec, face_type, size, crop_scale)
        if not fits(old_to_new, faceset.resolution, size):
            unfit += 1
            if unfit > MAX_UNFIT_SHARE * len(faceset.records):
                raise FacesetError(
                    f"{faceset.path} holds {faceset.face_type} crops, which do not contain the {face_type} crop this model "
                    f"needs; extract the faces again with `swapcam extract VIDEO --face-type {face_type} --size {size}`, "
                    "or give the videos or photos as --src")
            continue
        image = cv2.warpAffine(faceset.load_image(rec), old_to_new, (size, size), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)
        aligned = transform_points(np.asarray(rec.landmarks, np.float64), matrix)
        new_fs.append(replace(rec, aligned_landmarks=round_points(aligned), matrix=np.round(matrix, 6).tolist(),
                              face_type=face_type), image)
    return new_fs


def upscale(faceset: Faceset, face_type: str, size: int, crop_scale: float = 1.0) -> float:
    """How much a re-cut enlarges ``faceset``'s pixels (its first face's; > 1: upsampled)."""
    if not len(faceset):
        return 1.0
    _, old_to_new = recut_matrix(faceset.records[0], face_type, size, crop_scale)
    return float(np.sqrt(abs(np.linalg.det(old_to_new[:, :2]))))


def is_media(inputs: list[str]) -> bool:
    """Whether ``inputs`` are videos/photos/folders of them rather than one faceset folder."""
    return not (len(inputs) == 1 and Faceset.is_faceset(inputs[0]))


def check_faces(inputs: list[str], role: str) -> None:
    """FacesetError, before anything is written, for inputs that cannot give faces: missing paths, an empty
    faceset, a folder that is neither a faceset nor holds photos."""
    from training.extract import IMAGE_EXTENSIONS

    missing = [p for p in inputs if not Path(p).exists()]
    if missing:
        raise FacesetError(f"{role}: {missing[0]} does not exist (not a faceset, video, photo or folder)")
    if not is_media(inputs):
        if len(Faceset.open(inputs[0])) == 0:
            raise FacesetError(f"{role} faceset {inputs[0]} holds no faces; extract some with `swapcam extract`")
    elif len(inputs) == 1 and Path(inputs[0]).is_dir() and not any(
            p.suffix.lower() in IMAGE_EXTENSIONS for p in Path(inputs[0]).iterdir()):
        raise FacesetError(f"{role}: {inputs[0]} is not a faceset (no faceset.jsonl) nor a folder of photos")


def prepare_faces(inputs: list[str], work: Path, role: str, face_type: str, size: int, crop_scale: float = 1.0,
                  progress: bool = True) -> tuple[Path, str]:
    """A faceset of ``face_type`` (any size >= ``size`` is kept as it is; the trainer resizes) for ``inputs``:
    the faceset itself when it fits, else re-cut or extracted into ``work/ROLE_TYPESIZE``. Returns (faceset
    folder, what was done, for the user)."""
    from training.extract import ExtractOptions, extract

    check_faces(inputs, role)
    if not is_media(inputs):
        faceset = Faceset.open(inputs[0])
        if (faceset.face_type, faceset.crop_scale, faceset.resolution) == (face_type, crop_scale, size):
            return faceset.path, f"{role}: {faceset.path} ({len(faceset)} faces) as it is"
        out = work / f"{role}_{face_type}{size}"
        recut = recut_faceset(faceset, out, face_type, size, crop_scale, progress)
        note = (f"{role}: {faceset.path} ({faceset.face_type}, {faceset.resolution} px) re-cut to {face_type} {size} px "
                f"in {out} ({len(recut)} faces)")
        zoom = upscale(faceset, face_type, size, crop_scale)
        if zoom > 1.2:
            note += (f"; its faces are enlarged {zoom:.1f}x: extract them at --size {int(round(faceset.resolution * zoom))} "
                     "or more for a sharper model")
        return out, note
    out = work / f"{role}_{face_type}{size}"
    summary = extract(inputs, out, ExtractOptions(face_type=face_type, size=size, crop_scale=crop_scale,
                                                  progress=progress))
    if summary.errors:
        file, why = summary.errors[0]
        raise FacesetError(f"{role}: cannot read {file}: {why}")
    faceset = Faceset.open(out)
    if len(faceset) == 0:
        raise FacesetError(f"{role}: no face found in {', '.join(inputs)}")
    return out, f"{role}: {len(faceset)} faces extracted from {', '.join(inputs)} into {out}"
