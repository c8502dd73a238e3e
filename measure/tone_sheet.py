"""Faces side by side for the one-photo swap's tone: the input, the classic 2016 swap, and photo-swap variants (PNG).

``python -m measure.tone_sheet VIDEO --still S1.png --frames 38,120 --variant today= --variant light=tone=light
--out docs/photo_tone.png``

Each variant is a name and one-photo swap settings (``swapcam eval --photo`` keys, comma-separated, e.g.
``global=shading=0``); every variant swaps the clip from its first frame through the live loop's own code, the
classic column is ``measure.classic_warp``. Each tile is a square around the input's face, so the face's border
(the forehead cut, the cheeks, the jaw) shows at the size a viewer sees it enlarged.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

from measure.mouth_sheet import SheetError, face_tile, sheet


def parse_variant(text: str) -> tuple[str, dict]:
    """'light=tone=light,shading=0.25' -> ('light', {'tone': 'light', 'shading': 0.25}); SheetError if bad."""
    from swapcam.eval_cli import photo_settings

    name, sep, settings = text.partition("=")
    if not sep or not name:
        raise SheetError(f"--variant {text!r}: write NAME=KEY=VALUE,KEY=VALUE (or NAME= for the defaults)")
    try:
        return name, photo_settings([s for s in settings.split(",") if s])
    except ValueError as exc:
        raise SheetError(str(exc)) from exc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m measure.tone_sheet", description=__doc__.split("\n\n")[0])
    p.add_argument("video", help="input video file or folder of frames")
    p.add_argument("--still", required=True, type=Path, help="the target's still")
    p.add_argument("--frames", required=True, help="frame numbers, comma-separated (rows)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=SETTINGS",
                   help="a one-photo swap variant (repeat); NAME= alone is the defaults")
    p.add_argument("--no-classic", action="store_true", help="leave out the classic 2016 column")
    p.add_argument("--out", type=Path, default=Path("tone.png"), help="PNG to write")
    args = p.parse_args(argv)
    from measure.classic_warp import ClassicSwap
    from measure.eval_swap import swap_frames
    from measure.evaluate import EvalInputError, read_frames
    from realtime.face.landmarks import FaceLandmarker
    from realtime.swap.reference import ReferenceError
    from realtime.swap.swappers import open_swapper
    from realtime.util.atomic_files import write_image

    try:
        wanted = sorted({int(i) for i in args.frames.split(",")})
        variants = [parse_variant(v) for v in args.variant]
        frames = list(read_frames(args.video, wanted[-1] + 1))
        if len(frames) <= wanted[-1]:
            raise SheetError(f"{args.video} has {len(frames)} frames; asked for frame {wanted[-1]}")
        with FaceLandmarker(static_images=True) as lm:
            meshes = {}
            for i in wanted:
                faces = lm.detect(frames[i])
                if not faces:
                    raise SheetError(f"frame {i}: no face")
                meshes[i] = faces[0].points
        rows = {i: [face_tile(frames[i], meshes[i])] for i in wanted}
        names = ["input"]
        if not args.no_classic:
            still = cv2.imread(str(args.still))
            if still is None:
                raise SheetError(f"{args.still}: not a readable image")
            classic = ClassicSwap(still)
            for i, frame in enumerate(frames):
                out = classic(frame)
                if i in rows:
                    rows[i].append(face_tile(out, meshes[i]))
            classic.close()
            names.append("classic 2016")
        for name, settings in variants:
            swapper = open_swapper(args.still, **settings)
            for i, (out, _) in enumerate(swap_frames(frames, args.still, swapper=swapper)):
                if i in rows:
                    rows[i].append(face_tile(out, meshes[i]))
            names.append(name)
        write_image(args.out, sheet(names, [rows[i] for i in wanted]), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    except (SheetError, EvalInputError, ReferenceError, ValueError, OSError) as exc:
        print(f"tone_sheet: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: frames {', '.join(map(str, wanted))}; columns {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
