"""`swapcam eval --occluders`: does the swap keep what is in front of the face?

Moving synthetic occluders (``measure.occluders``, the evaluation family) are drawn over the input clip,
one kind at a time; the occluded clip is swapped as the live loop would, and compared with the occluded
input and with the same clip swapped without occluders. Per kind:

- **kept**: of the occluder's pixels inside the face (where the swap of the clean clip paints: its blend
  weight > 0.5), the share the output leaves as the occluded input showed them, every channel within
  ``tolerance`` grey levels (8 of 255: a feathered edge that lets 3 % of the swap through still counts
  as kept, a face painted over the fingers does not);
- **unoccluded change ratio**: over the face pixels no occluder covers (its mask grown by 2 px, away from
  anti-aliased edges), how much the output differs from the input (mean absolute difference), over the
  same for the clean clip swapped with occlusion off (today's full swap). 1 = the rest of the face is
  swapped as much as without occluders; the goal is within 10 %. Also the same ratio against the clean clip
  swapped with the setting being measured (``..._same_setting``): on a user who wears glasses, the occlusion
  stage rightly keeps them on the clean clip too, which the first ratio counts against it;
- **kept flicker**: of the occluder pixels inside the face in two consecutive frames, the share whose kept /
  painted state flips between them (a mask that twinkles at the occluder's edge shows here).

Once per clip, without occluders: the **clean change ratio** (the swap with the setting being measured over
the swap with occlusion off, whole face), which shows what the occlusion stage keeps of a face with nothing
drawn on it: false detections, or the user's real glasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from measure.occluders import EVAL_SEED_BASE, KINDS, OccluderTrack, cheek_colour

TOLERANCE = 8  # grey levels, per channel
FACE_WEIGHT = 0.5  # a pixel is "in the face" where the clean swap's blend weight reaches this
EDGE_GROW = 2  # px the occluder's mask grows before "unoccluded" pixels are counted
SEGMENT = 40  # frames per occluder instance

# swap(frames, occlusion) -> (output frame, blend weight) per frame, in order
SwapFn = Callable[[Iterable[np.ndarray], bool], Iterator[tuple[np.ndarray, np.ndarray]]]


@dataclass
class _Tally:
    occluder_px: int = 0
    kept_px: int = 0
    change: float = 0.0
    change_ref: float = 0.0
    change_same: float = 0.0
    steady_px: int = 0
    flipped_px: int = 0
    frames: int = 0
    kept_per_frame: list = field(default_factory=list)

    def report(self) -> dict:
        return {
            "occluder_pixels_in_face": self.occluder_px,
            "kept_share": self.kept_px / self.occluder_px if self.occluder_px else None,
            "kept_share_median_frame": float(np.median(self.kept_per_frame)) if self.kept_per_frame else None,
            "unoccluded_change_ratio": self.change / self.change_ref if self.change_ref > 0 else None,
            "unoccluded_change_ratio_same_setting": self.change / self.change_same if self.change_same > 0 else None,
            "kept_flicker": self.flipped_px / self.steady_px if self.steady_px else None,
            "frames_with_occluder_in_face": self.frames,
        }


def _abs_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(H, W) uint8: the largest per-channel absolute difference."""
    return cv2.absdiff(a, b).max(axis=2)


def _mean_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(H, W) float32: the mean per-channel absolute difference."""
    return cv2.absdiff(a, b).astype(np.float32).mean(axis=2)


def clip_landmarks(frames: list[np.ndarray]) -> list[np.ndarray | None]:
    """68-point landmarks of the largest face per frame (video-mode FaceMesh), None where none is found."""
    from realtime.face.landmarks import FaceLandmarker

    out = []
    with FaceLandmarker() as landmarker:
        for frame in frames:
            faces = landmarker.detect(frame)
            out.append(max(faces, key=lambda f: f.size).landmarks68 if faces else None)
    return out


def _crop_box(shape: tuple[int, ...], landmarks68: np.ndarray, grow: float = 0.35) -> tuple[slice, slice]:
    pts = np.asarray(landmarks68)[:, :2]
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    side = max(x1 - x0, y1 - y0) * (1 + 2 * grow)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.1 * side
    h, w = shape[:2]
    xa, ya = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    return slice(ya, int(min(h, ya + side))), slice(xa, int(min(w, xa + side)))


def _sheet_pair(occluded: np.ndarray, out: np.ndarray, lost: np.ndarray, landmarks68: np.ndarray,
                size: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """(occluded input, output with the occluder pixels it lost tinted red), the same square around the face."""
    marked = out.copy()
    marked[lost] = (0.5 * marked[lost] + [0, 0, 127]).astype(np.uint8)
    sl = _crop_box(out.shape, landmarks68)
    crop = lambda im: cv2.resize(im[sl], (size, size), interpolation=cv2.INTER_AREA)  # noqa: E731
    return crop(occluded), crop(marked)


def evaluate_occlusion(frames: list[np.ndarray], swap: SwapFn, *, occlusion: bool, kinds: Iterable[str] = KINDS,
                       tolerance: int = TOLERANCE, segment: int = SEGMENT, seed: int = EVAL_SEED_BASE,
                       sheet_per_kind: int = 2, progress: bool = True) -> tuple[dict, list]:
    """Score how the swap (``swap(frames, occlusion)``) keeps occluders of each kind drawn over ``frames``.

    Returns (report, contact-sheet pairs): the report has per kind the figures of the module docstring, and
    once per clip the clean change ratio; pairs are (occluded input, output) crops of the frames where each
    kind covers most of the face.
    """
    from tqdm import tqdm

    kinds = list(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown occluder kinds {unknown}; choose from {', '.join(KINDS)}")
    landmarks = clip_landmarks(frames)
    if not any(lm is not None for lm in landmarks):
        raise ValueError("no face found in any frame; nothing to occlude")
    own = next(cheek_colour(f, lm) for f, lm in zip(frames, landmarks) if lm is not None)
    total = len(frames) * (len(kinds) + (2 if occlusion else 1))
    bar = tqdm(total=total, desc="occlusion eval", unit="frame", disable=not progress)

    # the clean clip with occlusion off: where the face is, and how much a full swap changes it
    face_masks, ref_diff = [], []
    for frame, (out, weight) in zip(frames, swap(frames, False)):
        face_masks.append(np.packbits(weight > FACE_WEIGHT))
        ref_diff.append(np.round(_mean_diff(out, frame) * 8).astype(np.uint16))  # 1/8 grey level steps
        bar.update(1)
    shape = frames[0].shape[:2]
    face = lambda i: np.unpackbits(face_masks[i], count=shape[0] * shape[1]).reshape(shape).astype(bool)  # noqa: E731

    clean_ratio, same_diff = None, ref_diff
    if occlusion:
        change = change_ref = 0.0
        same_diff = []
        for i, (frame, (out, _)) in enumerate(zip(frames, swap(frames, True))):
            region = face(i)
            diff = _mean_diff(out, frame)
            same_diff.append(np.round(diff * 8).astype(np.uint16))
            change += float(diff[region].sum())
            change_ref += float(ref_diff[i][region].sum()) / 8
            bar.update(1)
        clean_ratio = change / change_ref if change_ref > 0 else None

    grow = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * EDGE_GROW + 1,) * 2)
    per_kind, pairs = {}, []
    for kind in kinds:
        track = OccluderTrack(kind, seed=seed, segment=segment, own_skin=own)
        drawn = [track.render(i, f, lm) for i, (f, lm) in enumerate(zip(frames, landmarks))]
        occluded = [d[0] if d is not None else f for d, f in zip(drawn, frames)]
        tally, best = _Tally(), []
        previous = None  # (inside, kept) of the frame before
        for i, (out, _) in enumerate(swap(occluded, occlusion)):
            bar.update(1)
            if drawn[i] is None:
                previous = None
                continue
            region, label = face(i), drawn[i][1]
            inside = label & region
            n = int(inside.sum())
            ok = _abs_diff(out, occluded[i]) <= tolerance
            if previous is not None:
                both = inside & previous[0]
                tally.steady_px += int(both.sum())
                tally.flipped_px += int((both & (ok != previous[1])).sum())
            previous = (inside, ok)
            if n:
                kept = int((inside & ok).sum())
                tally.occluder_px += n
                tally.kept_px += kept
                tally.frames += 1
                tally.kept_per_frame.append(kept / n)
                best.append((n, i, inside & ~ok, out))
                best = sorted(best, key=lambda b: -b[0])[: max(1, 4 * sheet_per_kind)]
            bare = region & ~cv2.dilate(label.view(np.uint8), grow).astype(bool)
            tally.change += float(_mean_diff(out, occluded[i])[bare].sum())
            tally.change_ref += float(ref_diff[i][bare].sum()) / 8
            tally.change_same += float(same_diff[i][bare].sum()) / 8
        # the sheet: frames where the kind covers most of the face, at least a segment apart where possible
        chosen: list = []
        for n, i, lost, out in best:
            if len(chosen) < sheet_per_kind and all(abs(i - j) >= segment // 2 for _, j, _, _ in chosen):
                chosen.append((n, i, lost, out))
        pairs += [_sheet_pair(occluded[i], out, lost, landmarks[i]) for _, i, lost, out in chosen]
        per_kind[kind] = tally.report()
    bar.close()
    shares = [r["kept_share"] for r in per_kind.values() if r["kept_share"] is not None]
    ratios = [r["unoccluded_change_ratio"] for r in per_kind.values() if r["unoccluded_change_ratio"] is not None]
    report = {
        "occlusion": occlusion,
        "frames": len(frames),
        "frames_with_face": int(sum(lm is not None for lm in landmarks)),
        "tolerance_grey_levels": tolerance,
        "segment_frames": segment,
        "seed": seed,
        "kinds": per_kind,
        "min_kept_share": min(shares) if shares else None,
        "mean_kept_share": float(np.mean(shares)) if shares else None,
        "min_unoccluded_change_ratio": min(ratios) if ratios else None,
        "clean_change_ratio": clean_ratio,
    }
    return report, pairs


def markdown_table(rows: dict[str, dict]) -> str:
    """One row per (swap, setting) report; per kind "kept share / unoccluded change ratio", with the ratio against
    the clean clip swapped with the same setting in brackets where occlusion is on."""
    kinds = [k for k in KINDS if any(k in r["kinds"] for r in rows.values())]
    head = "| swap | " + " | ".join(kinds) + " | clean change ratio |"
    lines = [head, "|---|" + "---|" * (len(kinds) + 1),
             "| goal | " + " | ".join(">= 0.90 / 0.90-1.10" for _ in kinds) + " | |"]
    f2 = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    for name, r in rows.items():
        cells = []
        for k in kinds:
            v = r["kinds"].get(k, {})
            cell = f"{f2(v.get('kept_share'))} / {f2(v.get('unoccluded_change_ratio'))}"
            if r.get("occlusion"):
                cell += f" ({f2(v.get('unoccluded_change_ratio_same_setting'))})"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'–' if r.get('clean_change_ratio') is None else f2(r['clean_change_ratio'])} |")
    return "\n".join(lines) + "\n"
