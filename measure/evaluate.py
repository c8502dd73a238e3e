"""`swapcam eval`: how good is a swap — identity, attribute preservation, temporal stability.

``evaluate(input_frames, output_frames, target, ...)`` walks an input video and its swapped output
frame by frame and returns a JSON-ready report:

- identity: cosine similarity (and dlib distance) of each output face to the target identity (the
  mean descriptor of the target faceset's faces) and top-1 retrieval among a gallery of identities
  (the target, any --gallery facesets, and the input video's own person as the obvious distractor);
- attributes: head-pose error (yaw/pitch/roll) and expression error (landmark shape after removing
  pose, in inter-ocular distances) between each input face and its output face;
- detail: sharpness of the output's face interior relative to the input's and, where the merge's
  blend weights are known (``--model``), ghosting: the share of the face interior left partly
  transparent (see ``measure.eval_detail``);
- eyes: eye openness and iris position of output against input (``measure.eval_eyes``);
- stability: warping error of the output under the INPUT's optical flow, as a ratio to the input's
  own warping error (1 = no more flicker than the source), and landmark jitter on still segments.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from measure.eval_detail import face_interior, ghosting, sharpness_ratio
from measure.eval_eyes import EyeTrack
from measure.eval_identity import Identity, IdentityEncoder, cosine_rows, top1
from measure.eval_metrics import (
    FlowWarper,
    expression_error,
    face_box_mask,
    landmark_step,
    pose_error,
    still_runs,
)
from realtime.frames.sources import ImageFolderSource, SourceError, VideoFileSource

SOURCE_NAME = "source (input video)"
SAME_PERSON_DISTANCE = 0.6  # dlib's documented threshold on descriptor distance
GHOSTED_FRAME = 0.25  # a frame whose partly transparent share of the face interior reaches this is ghosted


class EvalInputError(ValueError):
    """An input or output that cannot be evaluated (missing, unreadable, mismatched)."""


def open_frames(path: str | Path):
    """The live loop's own source for a video file or a folder of images, unpaced."""
    path = Path(path)
    try:
        if path.is_dir():
            return ImageFolderSource(path, realtime=False)
        if path.is_file():
            return VideoFileSource(path, realtime=False)
    except SourceError as exc:
        raise EvalInputError(str(exc)) from exc
    raise EvalInputError(f"{path}: no such video or folder of frames")


def count_frames(path: str | Path) -> int:
    """Frames in a video file (as its container states) or images in a folder."""
    source = open_frames(path)
    source.close()
    return len(source.files) if isinstance(source, ImageFolderSource) else source.frame_count


def read_frames(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """BGR frames of a video file or of a folder of images (sorted by name; unreadable images skipped)."""
    source = open_frames(path)
    try:
        n = 0
        while max_frames is None or n < max_frames:
            frame = source.read()
            if frame is None:
                if n == 0:
                    raise EvalInputError(f"{path}: no readable frames")
                return
            n += 1
            yield frame
    finally:
        source.close()


def _stats(values: Iterable[float]) -> dict:
    """mean / median / p95 / count of the finite values (None where there are none)."""
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
    if arr.size == 0:
        return {"mean": None, "median": None, "p95": None, "count": 0}
    return {"mean": float(arr.mean()), "median": float(np.median(arr)), "p95": float(np.percentile(arr, 95)), "count": int(arr.size)}


def _share(values: Iterable[float], threshold: float) -> float | None:
    """Share of the finite values that reach ``threshold`` (None where there are none)."""
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
    return float((arr >= threshold).mean()) if arr.size else None


def _finite_or_none(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


@dataclass
class _Track:
    """Per-frame measurements collected while walking the video."""

    similarity: list = field(default_factory=list)
    input_similarity: list = field(default_factory=list)
    distance: list = field(default_factory=list)
    pose: list = field(default_factory=list)  # (3,) or None
    expression: list = field(default_factory=list)
    warp_in: list = field(default_factory=list)
    warp_out: list = field(default_factory=list)
    motion: list = field(default_factory=list)
    sharpness: list = field(default_factory=list)
    ghosting: list = field(default_factory=list)
    lmk_in: list = field(default_factory=list)
    lmk_out: list = field(default_factory=list)
    out_embeddings: list = field(default_factory=list)
    in_embeddings: list = field(default_factory=list)


@dataclass
class EvalResult:
    """The JSON-ready report plus the contact-sheet crops (input, output) of sampled frames."""

    report: dict
    pairs: list[tuple[np.ndarray, np.ndarray]]


def _crop_pair(inp: np.ndarray, out: np.ndarray, lmk: np.ndarray, size: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """The same square around the input face, cut from input and output, resized to ``size``."""
    mask = face_box_mask(inp.shape, lmk, grow=0.3)
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = max(y1 - y0, x1 - x0)
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    y0, x0 = max(0, cy - side // 2), max(0, cx - side // 2)
    crop = lambda im: cv2.resize(im[y0 : y0 + side, x0 : x0 + side], (size, size), interpolation=cv2.INTER_AREA)  # noqa: E731
    return crop(inp), crop(out)


def evaluate(
    input_frames: Iterable[np.ndarray],
    output_frames: Iterable[np.ndarray],
    target: Identity,
    gallery: list[Identity] | None = None,
    *,
    encoder: IdentityEncoder | None = None,
    identity_every: int = 1,
    sheet_frames: int = 8,
    expected_frames: int | None = None,
    progress: bool = True,
    blend_weights: Iterable[np.ndarray] | None = None,
) -> EvalResult:
    """Score ``output_frames`` (the swap of ``input_frames``, frame for frame) against ``target``.

    identity_every: compute descriptors on every k-th frame only (dlib costs ~0.1 s a face on CPU).
    expected_frames: the number of frames, for the progress bar and the contact-sheet spacing.
    blend_weights: the merge's (H, W) blend weight of each output frame, for the ghosting measure.
    """
    from tqdm import tqdm

    from realtime.face.landmarks import FaceLandmarker

    encoder = encoder or IdentityEncoder()
    track = _Track()
    eyes = EyeTrack()
    warper = FlowWarper()
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    sheet_step = max(1, (expected_frames or 1) // max(1, sheet_frames))
    prev_in = prev_out = None
    n = faces_in = faces_out = 0
    start = time.perf_counter()
    bar = tqdm(total=expected_frames, desc="eval", unit="frame", disable=not progress)
    with FaceLandmarker() as lm_in, FaceLandmarker() as lm_out:
        weights = iter(blend_weights) if blend_weights is not None else None
        for inp, out in zip(input_frames, output_frames, strict=False):
            weight = next(weights, None) if weights is not None else None
            if inp.shape != out.shape:
                raise EvalInputError(
                    f"frame {n}: output frame is {out.shape}, input frame is {inp.shape}; the output must be the "
                    "input swapped frame for frame at the same size"
                )
            fi = lm_in.detect(inp)
            fo = lm_out.detect(out)
            face_in = max(fi, key=lambda f: f.size) if fi else None
            face_out = max(fo, key=lambda f: f.size) if fo else None
            faces_in += face_in is not None
            faces_out += face_out is not None
            lmk_in = face_in.landmarks68 if face_in else None
            lmk_out = face_out.landmarks68 if face_out else None
            track.lmk_in.append(lmk_in)
            track.lmk_out.append(lmk_out)
            eyes.add(face_in.mesh if face_in else None, face_out.mesh if face_out else None)

            sim = in_sim = dist = None
            if lmk_in is not None and n % identity_every == 0:
                e_out = encoder.embed(out, lmk_out if lmk_out is not None else lmk_in)
                e_in = encoder.embed(inp, lmk_in)
                track.out_embeddings.append(e_out)
                track.in_embeddings.append(e_in)
                sim = float(cosine_rows(e_out[None], target.centroid)[0])
                in_sim = float(cosine_rows(e_in[None], target.centroid)[0])
                dist = float(np.linalg.norm(e_out - target.centroid))
            track.similarity.append(sim)
            track.input_similarity.append(in_sim)
            track.distance.append(dist)

            if face_in is not None and face_out is not None:
                track.pose.append(pose_error((face_in.yaw, face_in.pitch, face_in.roll), (face_out.yaw, face_out.pitch, face_out.roll)))
                track.expression.append(expression_error(lmk_in, lmk_out))
            else:
                track.pose.append(None)
                track.expression.append(None)

            sharp = ghost = float("nan")
            if lmk_in is not None:
                interior = face_interior(inp.shape, lmk_in)
                sharp = sharpness_ratio(inp, out, interior)
                if weight is not None:
                    ghost = ghosting(weight, interior)
            track.sharpness.append(sharp)
            track.ghosting.append(ghost)

            w_in = w_out = motion = float("nan")
            if prev_in is not None and lmk_in is not None:
                warper.prepare(prev_in, inp, lmk_in)
                w_in = warper.warp_error(prev_in, inp)
                w_out = warper.warp_error(prev_out, out)
                motion = warper.motion
            track.warp_in.append(w_in)
            track.warp_out.append(w_out)
            track.motion.append(motion)

            if lmk_in is not None and n % sheet_step == 0 and len(pairs) < sheet_frames:
                pairs.append(_crop_pair(inp, out, lmk_in))
            prev_in, prev_out = inp, out
            n += 1
            bar.update(1)
    bar.close()
    if n == 0:
        raise EvalInputError("no frames to evaluate (input or output is empty)")
    if faces_in == 0:
        raise EvalInputError("no face found in any input frame; nothing to evaluate")
    report = _summarise(track, target, gallery or [], n, faces_in, faces_out)
    report["eyes"] = eyes.summary()
    report["per_frame"].update(eyes.per_frame())
    report["seconds"] = round(time.perf_counter() - start, 2)
    return EvalResult(report, pairs)


def _summarise(track: _Track, target: Identity, gallery: list[Identity], n: int, faces_in: int, faces_out: int) -> dict:
    out_e = np.asarray(track.out_embeddings)
    in_e = np.asarray(track.in_embeddings)
    source = Identity(SOURCE_NAME, in_e) if len(in_e) else None
    if source is not None and np.linalg.norm(source.centroid - target.centroid) < SAME_PERSON_DISTANCE:
        source = None  # the input already shows the target: its person is no distractor
    everyone = [target] + [g for g in gallery if g.name != target.name] + ([source] if source else [])
    picks = top1(out_e, everyone)
    mean_pick = top1(out_e.mean(0, keepdims=True), everyone)[0] if len(out_e) else None
    to_source = cosine_rows(out_e, in_e.mean(0)) if len(in_e) else np.zeros(0)

    pose = np.array([p for p in track.pose if p is not None]).reshape(-1, 3)
    warp_in = np.asarray(track.warp_in, np.float64)
    warp_out = np.asarray(track.warp_out, np.float64)
    both = np.isfinite(warp_in) & np.isfinite(warp_out)
    ratio = float(warp_out[both].sum() / warp_in[both].sum()) if both.any() and warp_in[both].sum() > 0 else None

    still = still_runs(np.asarray(track.motion, np.float64))
    jit_in, jit_out = [], []
    for i in range(1, n):
        if still[i] and still[i - 1]:
            a0, a1, b0, b1 = track.lmk_in[i - 1], track.lmk_in[i], track.lmk_out[i - 1], track.lmk_out[i]
            if a0 is not None and a1 is not None and b0 is not None and b1 is not None:
                jit_in.append(landmark_step(a0, a1))
                jit_out.append(landmark_step(b0, b1))
    j_in, j_out = (float(np.mean(jit_in)), float(np.mean(jit_out))) if jit_in else (None, None)

    return {
        "frames": n,
        "frames_with_input_face": faces_in,
        "frames_with_output_face": faces_out,
        "identity": {
            "target": target.name,
            "target_faces": int(len(target.embeddings)),
            "similarity_to_target": _stats(track.similarity),
            "input_similarity_to_target": _stats(track.input_similarity),
            "similarity_to_source": _stats(to_source.tolist()),
            "dlib_distance_to_target": _stats(track.distance),
            "dlib_same_person_threshold": SAME_PERSON_DISTANCE,
            "gallery": [g.name for g in everyone],
            "top1_accuracy": float(np.mean([p == target.name for p in picks])) if picks else None,
            "top1_of_mean_descriptor": mean_pick,
            "top1_counts": {name: picks.count(name) for name in dict.fromkeys(picks)},
        },
        "pose_error_deg": {
            "yaw": _stats(pose[:, 0].tolist()),
            "pitch": _stats(pose[:, 1].tolist()),
            "roll": _stats(pose[:, 2].tolist()),
            "mean_of_axes": _stats(pose.mean(1).tolist()),
        },
        "expression_error_iod": _stats(track.expression),
        "detail": {
            "sharpness_ratio": _stats(track.sharpness),
            "ghosting_fraction": _stats(track.ghosting),
            "ghosted_frames": _share(track.ghosting, GHOSTED_FRAME),
            "ghosted_frame_threshold": GHOSTED_FRAME,
        },
        "temporal": {
            "warp_error_input": _stats(warp_in.tolist()),
            "warp_error_output": _stats(warp_out.tolist()),
            "warp_ratio": ratio,
            "still_frames": int(still.sum()),
            "jitter_input_iod": j_in,
            "jitter_output_iod": j_out,
            "jitter_ratio": (j_out / j_in) if j_in else None,
        },
        "per_frame": {
            "similarity_to_target": [_finite_or_none(v) for v in track.similarity],
            "input_similarity_to_target": [_finite_or_none(v) for v in track.input_similarity],
            "pose_error_deg": [None if p is None else float(np.mean(p)) for p in track.pose],
            "expression_error_iod": [_finite_or_none(v) for v in track.expression],
            "sharpness_ratio": [_finite_or_none(v) for v in track.sharpness],
            "ghosting_fraction": [_finite_or_none(v) for v in track.ghosting],
            "warp_error_input": [_finite_or_none(v) for v in track.warp_in],
            "warp_error_output": [_finite_or_none(v) for v in track.warp_out],
            "input_motion_px": [_finite_or_none(v) for v in track.motion],
            "still": still.astype(int).tolist(),
        },
    }
