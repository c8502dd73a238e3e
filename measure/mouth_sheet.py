"""Open-mouth frames side by side: the input, then the one-photo swap under each compared setting (PNG).

``python -m measure.mouth_sheet VIDEO --model PHOTO --compare proportions=0,1 --out docs/photo_mouths.png``

The frames are the ``--frames`` ones whose input mouth is opened widest (inner-lip gap over mouth
width), at least ``--spacing`` frames apart. Every setting swaps the clip from its first frame through
the live loop's own code (``measure.eval_swap.swap_frames``: smoothing and merge as a viewer sees them),
so each column shows what that setting gives live. Each tile is a square around the input's face.
One row per frame: input | setting 1 | setting 2 | ...; the settings are named in a header row.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

# photo-swapper options that --compare may vary, with their types; 'color' is the merge's colour transfer
OPTION_TYPES = {"proportions": float, "forehead": float, "grow": float, "shading": float, "resolution": int,
                "color": str, "eyes": str}
TILE = 220
HEADER = 22


class SheetError(ValueError):
    """Bad input for the mouth sheet: a one-line reason."""


def parse_compare(item: str) -> tuple[str, list]:
    """'proportions=0,1' -> ('proportions', [0.0, 1.0]); SheetError on an unknown key or a bad value."""
    key, sep, values = item.partition("=")
    key = key.strip()
    if not sep or key not in OPTION_TYPES:
        raise SheetError(f"--compare {item!r}: write KEY=V1,V2 with KEY one of {', '.join(OPTION_TYPES)}")
    try:
        parsed = [OPTION_TYPES[key](v.strip()) for v in values.split(",") if v.strip()]
    except ValueError as exc:
        raise SheetError(f"--compare {item!r}: {exc}") from exc
    if not parsed:
        raise SheetError(f"--compare {item!r}: no values")
    return key, parsed


def widest_mouths(frames: list[np.ndarray], count: int, spacing: int) -> list[tuple[int, float, np.ndarray]]:
    """[(frame index, openness, mesh (478, 2) in frame pixels)] of the ``count`` frames with the widest-open
    mouths, at least ``spacing`` frames apart, in frame order."""
    from tqdm import tqdm

    from realtime.face.regions import mouth_openness
    from realtime.face.landmarks import FaceLandmarker

    found = []
    with FaceLandmarker(static_images=False) as landmarker:
        for i, frame in enumerate(tqdm(frames, desc="mouths", unit="frame", leave=False)):
            faces = landmarker.detect(frame)
            if faces:
                found.append((i, mouth_openness(faces[0].points), faces[0].points[:, :2].copy()))
    chosen: list[tuple[int, float, np.ndarray]] = []
    for item in sorted(found, key=lambda t: -t[1]):
        if len(chosen) == count:
            break
        if all(abs(item[0] - c[0]) >= spacing for c in chosen):
            chosen.append(item)
    return sorted(chosen, key=lambda t: t[0])


def face_tile(image: np.ndarray, mesh: np.ndarray, size: int = TILE) -> np.ndarray:
    """(size, size, 3) square crop around the face of ``mesh`` (1.5x its height), bicubic."""
    (x0, y0), (x1, y1) = mesh.min(0), mesh.max(0)
    half = 0.75 * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    scale = size / (2 * half)
    m = np.array([[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]], np.float64)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def write_sheet(out: Path, names: list[str], rows: dict[int, list[np.ndarray]], picks) -> str:
    """Write the sheet of ``rows`` (one per picked frame, in ``picks`` order) as a PNG at ``out``; returns the
    line that says which frames and columns it holds."""
    from realtime.util.atomic_files import write_image

    write_image(out, sheet(names, [rows[i] for i, _, _ in picks]), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return (f"wrote {out}: frames " + ", ".join(f"{i} (mouth {o:.2f})" for i, o, _ in picks)
            + f"; columns {', '.join(names)}")


def sheet(columns: list[str], rows: list[list[np.ndarray]]) -> np.ndarray:
    """A header row naming the columns over the rows of equal tiles."""
    body = np.vstack([np.hstack(r) for r in rows])
    head = np.full((HEADER, body.shape[1], 3), 32, np.uint8)
    tile = rows[0][0].shape[1]
    for j, name in enumerate(columns):
        cv2.putText(head, name, (j * tile + 6, HEADER - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return np.vstack([head, body])


def swap_options(model: str | Path, key: str, value) -> tuple[object, object, dict]:
    """(swapper, merge settings, processor options) for ``model`` with ``key`` set to ``value``: 'color' is
    the merge's, 'eyes' the processor's (it applies to trained models too), every other key the photo
    swapper's (SheetError for a trained model)."""
    from realtime.merging.merge import MergeSettings
    from realtime.swap.swappers import open_swapper

    options = {} if key in ("color", "eyes") else {key: value}
    swapper = open_swapper(model, **options)
    if options and getattr(swapper, "needs_mesh", False) is False:
        raise SheetError(f"{model} is a trained model; --compare {key} is a one-photo swap setting")
    merge = MergeSettings(color=value) if key == "color" else MergeSettings()
    return swapper, merge, ({"eyes": value} if key == "eyes" else {})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m measure.mouth_sheet", description=__doc__.split("\n\n")[0])
    p.add_argument("video", help="input video file or folder of frames")
    p.add_argument("--model", required=True, help="photo / folder / video of the target (the one-photo swap)")
    p.add_argument("--compare", required=True, metavar="KEY=V1,V2",
                   help="the setting to vary, one column per value: " + ", ".join(OPTION_TYPES))
    p.add_argument("--frames", type=int, default=4, help="open-mouth frames (rows)")
    p.add_argument("--spacing", type=int, default=25, help="least distance between chosen frames")
    p.add_argument("--max-frames", type=int, default=None, help="look at the first N frames only")
    p.add_argument("--out", type=Path, default=Path("mouths.png"), help="PNG to write")
    args = p.parse_args(argv)
    from measure.eval_swap import swap_frames
    from measure.evaluate import EvalInputError, read_frames
    from realtime.swap.reference import ReferenceError

    try:
        key, values = parse_compare(args.compare)
        if args.frames < 1:
            raise SheetError("--frames must be at least 1")
        frames = list(read_frames(args.video, args.max_frames))
        picks = widest_mouths(frames, args.frames, args.spacing)
        if not picks:
            raise SheetError(f"{args.video}: no face found")
        last = picks[-1][0]
        wanted = {i for i, _, _ in picks}
        rows = {i: [face_tile(frames[i], mesh)] for i, _, mesh in picks}
        for value in values:
            swapper, merge, processor_options = swap_options(args.model, key, value)
            for i, (out, _) in enumerate(swap_frames(frames[: last + 1], args.model, swapper=swapper, merge=merge,
                                                     **processor_options)):
                if i in wanted:
                    rows[i].append(face_tile(out, next(m for j, _, m in picks if j == i)))
        names = ["input"] + [f"{key}={v:g}" if isinstance(v, float) else f"{key}={v}" for v in values]
        said = write_sheet(args.out, names, rows, picks)
    except (SheetError, EvalInputError, ReferenceError, ValueError, OSError) as exc:
        print(f"mouth_sheet: {exc}", file=sys.stderr)
        return 2
    print(said)
    return 0


if __name__ == "__main__":
    sys.exit(main())
