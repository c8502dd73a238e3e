"""Open-mouth frames side by side for several swaps: the input, then each model or photo (PNG).

``python -m measure.model_sheet VIDEO --model a.onnx a.onnx@model-mouth PHOTO --name base base-own-mouth one-photo``

The rows are the ``--frames`` frames whose input mouth is opened widest (``measure.mouth_sheet``'s choice);
every column swaps the clip from its first frame through the live loop's own code, smoothing and merge
included, as a viewer sees it. A model named ``PATH@model-mouth`` draws the mouth opening itself instead of
showing the user's (``FaceSwapper.user_mouth`` off), for comparing the two.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m measure.model_sheet", description=__doc__.split("\n\n")[0])
    p.add_argument("video", help="input video file or folder of frames")
    p.add_argument("--model", nargs="+", required=True, help="models (.onnx) and/or photos of the target, one column each")
    p.add_argument("--name", nargs="*", default=None, help="column names (default: the file names)")
    p.add_argument("--frames", type=int, default=4, help="open-mouth frames (rows)")
    p.add_argument("--spacing", type=int, default=25, help="least distance between chosen frames")
    p.add_argument("--max-frames", type=int, default=None, help="look at the first N frames only")
    p.add_argument("--out", type=Path, default=Path("models_mouths.png"), help="PNG to write")
    args = p.parse_args(argv)
    from measure.eval_swap import swap_frames
    from measure.evaluate import EvalInputError, read_frames
    from measure.mouth_sheet import SheetError, face_tile, widest_mouths, write_sheet
    from realtime.swap.model_contract import ModelContractError
    from realtime.swap.reference import ReferenceError
    from realtime.swap.swappers import open_swapper

    names = args.name or [Path(m).name for m in args.model]
    try:
        if len(names) != len(args.model):
            raise SheetError(f"{len(args.model)} models but {len(names)} names")
        frames = list(read_frames(args.video, args.max_frames))
        picks = widest_mouths(frames, args.frames, args.spacing)
        if not picks:
            raise SheetError(f"{args.video}: no face found")
        last = picks[-1][0]
        meshes = {i: mesh for i, _, mesh in picks}
        rows = {i: [face_tile(frames[i], mesh)] for i, mesh in meshes.items()}
        for item in args.model:
            model, _, option = item.partition("@")
            swapper = open_swapper(model)
            if option not in ("", "model-mouth") or (option and not hasattr(swapper, "user_mouth")):
                raise SheetError(f"{item}: the only option is @model-mouth, for trained reference-prior models")
            if option:
                swapper.user_mouth = False
            for i, (out, _) in enumerate(swap_frames(frames[: last + 1], model, swapper=swapper)):
                if i in meshes:
                    rows[i].append(face_tile(out, meshes[i]))
        said = write_sheet(args.out, ["input", *names], rows, picks)
    except (SheetError, EvalInputError, ReferenceError, ModelContractError, ValueError, OSError) as exc:
        print(f"model_sheet: {exc}", file=sys.stderr)
        return 2
    print(said)
    return 0


if __name__ == "__main__":
    sys.exit(main())
