"""Blink and gaze frames side by side: the input's eyes, then the swap under each compared setting (PNG).

``python -m measure.eye_sheet VIDEO --model PHOTO_OR_MODEL [--model ...] --compare eyes=model,user --out docs/eyes.png``

The frames are the input's ``--blinks`` most-closed frames (eye openness, ``measure.eval_eyes``) and its
``--gazes`` frames whose irises sit furthest from where they usually are (left, right, up or down), each at
least ``--spacing`` frames apart. Every setting swaps the clip from its first frame through the live
loop's own code (``measure.eval_swap.swap_frames``), so each column shows what that setting gives live.
Each tile is a band across both eyes of the input's face, enlarged. One row per frame:
input | model 1 setting 1 | model 1 setting 2 | ... | model 2 setting 1 | ...; each row is labelled with the frame, its kind and the input's
openness, the header names the settings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from measure.mouth_sheet import SheetError, parse_compare, sheet

BAND = (320, 128)  # tile width, height (pixels)


def eye_tile(image: np.ndarray, mesh: np.ndarray, size: tuple[int, int] = BAND) -> np.ndarray:
    """A band across both eyes of the face of ``mesh`` (frame pixels): 1.6x the span between the outer
    eye corners wide, level with the eye line, enlarged bicubically to ``size`` (width, height)."""
    a, b = mesh[33, :2].astype(np.float64), mesh[263, :2].astype(np.float64)
    w, h = size
    span = 1.6 * float(np.linalg.norm(b - a))
    angle = np.arctan2(b[1] - a[1], b[0] - a[0])
    scale = w / max(span, 1e-6)
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    centre = (a + b) / 2
    m = np.array([[c, s, 0.0], [-s, c, 0.0]])
    m[:, 2] = np.array([w / 2, h / 2]) - m[:, :2] @ centre
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def pick_frames(meshes: list[np.ndarray | None], blinks: int, gazes: int, spacing: int) -> list[tuple[int, str]]:
    """[(frame index, 'blink' | 'gaze')] in frame order: the ``blinks`` most-closed frames and the ``gazes``
    frames with the iris furthest from its median position (eyes open), at least ``spacing`` apart."""
    from measure.eval_eyes import OPEN_SHARE, eye_openness, iris_positions

    found = [(i, eye_openness(m), iris_positions(m)) for i, m in enumerate(meshes) if m is not None]
    if not found:
        return []
    openness = np.array([o for _, o, _ in found])
    chosen: list[tuple[int, str]] = []

    def take(order, kind, count):
        taken = 0
        for k in order:
            if taken == count:
                break
            i = found[k][0]
            if all(abs(i - j) >= spacing for j, _ in chosen):
                chosen.append((i, kind))
                taken += 1

    take(np.argsort(openness, kind="stable"), "blink", blinks)
    irises = [(k, p.mean(0)) for k, (_, o, p) in enumerate(found) if p is not None
              and o >= OPEN_SHARE * np.median(openness)]
    if irises:
        centre = np.median(np.array([p for _, p in irises]), 0)
        far = sorted(irises, key=lambda kp: -float(np.linalg.norm(kp[1] - centre)))
        take([k for k, _ in far], "gaze", gazes)
    return sorted(chosen)


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    out = tile.copy()
    cv2.rectangle(out, (0, out.shape[0] - 20), (8 + 8 * len(text), out.shape[0]), (32, 32, 32), -1)
    cv2.putText(out, text, (4, out.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m measure.eye_sheet", description=__doc__.split("\n\n")[0])
    p.add_argument("video", help="input video file or folder of frames")
    p.add_argument("--model", required=True, action="append",
                   help="photo / folder / video of the target, or a trained model (repeat for more)")
    p.add_argument("--compare", required=True, metavar="KEY=V1,V2",
                   help="the setting to vary, one column per value (e.g. eyes=model,user)")
    p.add_argument("--blinks", type=int, default=2, help="most-closed frames (rows)")
    p.add_argument("--gazes", type=int, default=2, help="frames whose gaze is furthest off centre (rows)")
    p.add_argument("--spacing", type=int, default=10, help="least distance between chosen frames")
    p.add_argument("--frames", default=None, metavar="I,J,...",
                   help="these frames instead (each labelled blink or open by the input's openness)")
    p.add_argument("--max-frames", type=int, default=None, help="look at the first N frames only")
    p.add_argument("--out", type=Path, default=Path("eyes.png"), help="PNG to write")
    args = p.parse_args(argv)
    from tqdm import tqdm

    from measure.eval_eyes import eye_openness
    from measure.eval_swap import swap_frames
    from measure.evaluate import EvalInputError, read_frames
    from measure.mouth_sheet import swap_options
    from realtime.face.landmarks import FaceLandmarker
    from realtime.swap.reference import ReferenceError
    from realtime.util.atomic_files import write_image

    try:
        key, values = parse_compare(args.compare)
        frames = list(read_frames(args.video, args.max_frames))
        meshes = []
        with FaceLandmarker() as landmarker:
            for frame in tqdm(frames, desc="eyes", unit="frame", leave=False):
                faces = landmarker.detect(frame)
                meshes.append(max(faces, key=lambda f: f.size).mesh if faces else None)
        if args.frames:
            from measure.eval_eyes import OPEN_SHARE

            chosen = sorted(int(i) for i in args.frames.split(","))
            if any(not 0 <= i < len(frames) or meshes[i] is None for i in chosen):
                raise SheetError(f"--frames {args.frames}: every frame must exist and show a face")
            median = float(np.median([eye_openness(m) for m in meshes if m is not None]))
            picks = [(i, "blink" if eye_openness(meshes[i]) < OPEN_SHARE * median else "open") for i in chosen]
        else:
            picks = pick_frames(meshes, args.blinks, args.gazes, args.spacing)
        if not picks:
            raise SheetError(f"{args.video}: no face found")
        last = picks[-1][0]
        wanted = dict(picks)
        rows = {i: [_label(eye_tile(frames[i], meshes[i]), f"frame {i}: {kind} ({eye_openness(meshes[i]):.2f})")]
                for i, kind in picks}
        names = ["input"]
        for model in args.model:
            for value in values:
                swapper, merge, processor_options = swap_options(model, key, value)
                for i, (out, _) in enumerate(swap_frames(frames[: last + 1], model, swapper=swapper, merge=merge,
                                                         **processor_options)):
                    if i in wanted:
                        rows[i].append(eye_tile(out, meshes[i]))
                label = f"{key}={v:g}" if isinstance((v := value), float) else f"{key}={value}"
                names.append(f"{Path(model).name}: {label}" if len(args.model) > 1 else label)
        write_image(args.out, sheet(names, [rows[i] for i, _ in picks]), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    except (SheetError, EvalInputError, ReferenceError, ValueError, OSError) as exc:
        print(f"eye_sheet: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: frames " + ", ".join(f"{i} ({kind})" for i, kind in picks) + f"; columns {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
