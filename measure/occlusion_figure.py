"""A picture of real occlusions: input | swap without the occlusion stage | swap with it, per swap kind.

    python -m measure.occlusion_figure --out docs/occlusion_helmet.png

By default: the helmet selfie's glasses (frame 38) and the hand passing in front of her face (frame 168),
and GRID s27's glasses (frame 60), each swapped by the one-photo swap (models/photos/london_063.jpg) and by
models/demo.onnx. Every row is the live loop's own processing of the clip from ``WARMUP`` frames before the
frame shown (so smoothing and the mask's history are as live), cropped around the face.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"
DEFAULT_SHOTS = (f"{SHARED}/helmet_selfie.mp4:38", f"{SHARED}/helmet_selfie.mp4:168", f"{SHARED}/grid_s27.mp4:60")
DEFAULT_MODELS = ("models/photos/london_063.jpg", "models/demo.onnx")
WARMUP = 15
TILE = 240


def _frames(path: str, first: int, last: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(path)
    cap.set(cv2.CAP_PROP_POS_FRAMES, first)
    frames = []
    for _ in range(first, last + 1):
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if len(frames) != last - first + 1:
        raise ValueError(f"{path}: cannot read frames {first}..{last}")
    return frames


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    cv2.putText(tile, text, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, text, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def _face_square(frame: np.ndarray) -> tuple[slice, slice]:
    from realtime.face.landmarks import FaceLandmarker

    with FaceLandmarker(static_images=True) as lm:
        faces = lm.detect(frame)
    h, w = frame.shape[:2]
    if not faces:
        side = min(h, w)
        return slice((h - side) // 2, (h + side) // 2), slice((w - side) // 2, (w + side) // 2)
    pts = max(faces, key=lambda f: f.size).landmarks68
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    side = int(min(min(h, w), max(x1 - x0, y1 - y0) * 1.9))
    cx, cy = int((x0 + x1) / 2), int((y0 + y1) / 2 - 0.12 * side)
    xa, ya = int(np.clip(cx - side // 2, 0, w - side)), int(np.clip(cy - side // 2, 0, h - side))
    return slice(ya, ya + side), slice(xa, xa + side)


def render(shots: list[str], models: list[str], occlusion_model: str | None = None) -> np.ndarray:
    """The figure: one row per (shot, model), columns input | occlusion off | occlusion on."""
    from measure.eval_swap import swap_frames
    from realtime.merging.occlusion import open_occlusion
    from realtime.swap.swappers import open_swapper

    masker = open_occlusion(occlusion_model)
    rows = []
    for shot in shots:
        path, _, index = shot.rpartition(":")
        index = int(index)
        frames = _frames(path, max(0, index - WARMUP), index)
        crop = _face_square(frames[-1])
        fit = lambda im: cv2.resize(im[crop], (TILE, TILE), interpolation=cv2.INTER_AREA)  # noqa: E731
        for model in models:
            swapper = open_swapper(model)
            tiles = [_label(fit(frames[-1]), f"{Path(path).stem} frame {index}")]
            for occ, text in ((None, "swap, occlusion off"), (masker, "swap, occlusion on")):
                out = [o for o, _ in swap_frames(frames, model, swapper=swapper, occlusion=occ)][-1]
                tiles.append(_label(fit(out), f"{Path(model).name}: {text}"))
            rows.append(np.hstack(tiles))
    return np.vstack(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m measure.occlusion_figure", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/occlusion_helmet.png"))
    parser.add_argument("--shot", action="append", default=None, metavar="VIDEO:FRAME",
                        help=f"a frame to show (repeatable; default: {', '.join(Path(s).name for s in DEFAULT_SHOTS)})")
    parser.add_argument("--model", action="append", default=None, help="swap(s) to show (default: the photo and demo.onnx)")
    parser.add_argument("--occlusion-model", default=None, help="occlusion model (default: the shipped one)")
    args = parser.parse_args(argv)
    from realtime.util.atomic_files import write_image

    try:
        figure = render(args.shot or list(DEFAULT_SHOTS), args.model or list(DEFAULT_MODELS), args.occlusion_model)
    except (ValueError, OSError) as exc:
        print(f"occlusion_figure: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_image(args.out, figure, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
