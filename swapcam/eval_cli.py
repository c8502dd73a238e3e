"""`swapcam eval`: score a swapped video against the target identity's faceset.

Either give the already-swapped video (--swapped) or a model (--model) to swap the input with
the live pipeline's own processing code. Writes eval.json, eval_curves.png and
contact_sheet.png into --out.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

from realtime.util.atomic_files import write_text


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="input video file or folder of frames (the unswapped source)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--swapped", type=Path, help="the swapped output video/folder, frame for frame with INPUT")
    what.add_argument("--model", type=Path,
                      help="ONNX/DFM model, or a photo / folder of photos / video of the target (one-photo swap): "
                           "swap INPUT with it first, then score")
    parser.add_argument("--target", type=Path, default=None,
                        help="faceset of the target identity the swap should show (required, except with --occluders)")
    parser.add_argument("--gallery", type=Path, nargs="*", default=[],
                        help="more facesets (other people) for top-1 retrieval; the input's own person joins as a distractor unless it is the target")
    parser.add_argument("--out", type=Path, default=Path("eval_out"), help="folder for eval.json and the PNGs")
    parser.add_argument("--max-frames", type=int, default=None, help="score only the first N frames")
    parser.add_argument("--identity-every", type=int, default=1,
                        help="compute identity descriptors on every k-th frame (dlib is ~0.1 s a face on CPU)")
    parser.add_argument("--faceset-faces", type=int, default=32, help="faces per faceset used for its mean descriptor")
    parser.add_argument("--sheet-frames", type=int, default=8, help="frame pairs on the contact sheet")
    parser.add_argument("--reference", type=Path, default=None, metavar="PHOTO",
                        help="also score the one-photo swap (no training) of this photo / folder / video of the target "
                             "on the same frames, as a reference row beside the model (eval.md, eval.json)")
    parser.add_argument("--color", default="rct", help="with --model: colour transfer mode of the merge")
    parser.add_argument("--eyes", choices=("user", "model"), default="user",
                        help="with --model: the user's own eyes between the swapped lids (default) or the swap's own")
    parser.add_argument("--photo", action="append", default=[], metavar="KEY=VALUE",
                        help="a one-photo swap setting for --model/--reference photos (repeat for more): "
                             + ", ".join(PHOTO_SETTINGS))
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    from swapcam.eval_occlusion_cli import configure_parser as occlusion_options

    occlusion_options(parser)


PHOTO_SETTINGS = {"forehead": float, "grow": float, "shading": float, "proportions": float, "resolution": int,
                  "tone": str, "mouth": lambda v: {"on": True, "off": False}[v], "band": str}


def photo_settings(items: list[str]) -> dict:
    """['shading=0', 'tone=light'] -> {'shading': 0.0, 'tone': 'light'}; ValueError with the reason."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in PHOTO_SETTINGS:
            raise ValueError(f"--photo {item!r}: write KEY=VALUE with KEY one of {', '.join(PHOTO_SETTINGS)}")
        try:
            out[key] = PHOTO_SETTINGS[key](value)
        except (KeyError, ValueError):
            raise ValueError(f"--photo {item!r}: bad value {value!r}") from None
    return out


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _swapped(inputs: list, model: Path, args: argparse.Namespace):
    """(output frames, blend weights) of ``inputs`` swapped by ``model`` (a model or a photo) with the live
    processor, lazily and in step (itertools.tee holds one frame)."""
    from measure.eval_swap import swap_frames
    from measure.evaluate import open_frames
    from realtime.merging.merge import MergeSettings
    from realtime.swap.swappers import open_swapper

    source = open_frames(args.input)  # for its frame rate (the smoothing's clock)
    source.close()
    from swapcam.eval_occlusion_cli import occlusion_stage

    swapper = open_swapper(model, **photo_settings(args.photo))
    print(f"swapcam eval: {swapper.describe()}", flush=True)
    pairs, weight_pairs = itertools.tee(swap_frames(inputs, model, fps=source.fps, swapper=swapper,
                                                    merge=MergeSettings(color=args.color).validate(),
                                                    occlusion=occlusion_stage(args), eyes=args.eyes))
    return (frame for frame, _ in pairs), (weight for _, weight in weight_pairs)


def main(args: argparse.Namespace) -> int:
    from measure.eval_identity import IdentityEncoder, IdentityModelError, faceset_identity
    from measure.eval_report import markdown_table
    from measure.evaluate import EvalInputError, count_frames, evaluate, open_frames, read_frames
    from measure.report_plots import contact_sheet_png, eval_curves_png
    from training.faceset import FacesetError

    if args.occluders:
        from swapcam.eval_occlusion_cli import main as occlusion_main

        return occlusion_main(args)
    if args.target is None:
        print("swapcam eval: --target FACESET is required (except with --occluders)", file=sys.stderr)
        return 2
    if args.identity_every < 1:
        print("swapcam eval: --identity-every must be at least 1", file=sys.stderr)
        return 2
    try:
        if not args.input.exists():
            raise EvalInputError(f"{args.input}: no such input video or folder")
        encoder = IdentityEncoder()
        target = faceset_identity(args.target, encoder, args.faceset_faces)
        gallery = [faceset_identity(g, encoder, args.faceset_faces) for g in args.gallery]
        names = [target.name] + [g.name for g in gallery]
        if len(set(names)) != len(names):
            raise EvalInputError(f"facesets must have distinct folder names (they name the identities): {names}")
        total = count_frames(args.input)
        if args.max_frames:
            total = min(total, args.max_frames) if total else args.max_frames
        inputs = read_frames(args.input, args.max_frames)
        blend_weights = None
        if args.swapped is not None:
            if not args.swapped.exists():
                raise EvalInputError(f"{args.swapped}: no such swapped video or folder")
            n_out = count_frames(args.swapped)
            if total and n_out and n_out < total:
                print(f"swapcam eval: warning: {args.swapped} has {n_out} frames, input has {total}; scoring {n_out}",
                      file=sys.stderr)
            outputs = read_frames(args.swapped, args.max_frames)
        else:
            inputs = list(inputs)
            outputs, blend_weights = _swapped(inputs, args.model, args)
        args.out.mkdir(parents=True, exist_ok=True)
        result = evaluate(inputs, outputs, target, gallery, encoder=encoder, identity_every=args.identity_every,
                          sheet_frames=args.sheet_frames, expected_frames=total or None, progress=not args.no_progress,
                          blend_weights=blend_weights)
        reference = None
        if args.reference is not None:
            from realtime.swap.swappers import swapper_kind

            if swapper_kind(args.reference) != "photo":
                raise EvalInputError(f"--reference {args.reference}: give a photo, folder of photos or video of the "
                                     "target (the one-photo swap), not a model")
            if not isinstance(inputs, list):  # --swapped: the input frames were read (and used up) already
                inputs = list(read_frames(args.input, args.max_frames))
            ref_outputs, ref_weights = _swapped(inputs, args.reference, args)
            reference = evaluate(inputs, ref_outputs, target, gallery, encoder=encoder,
                                 identity_every=args.identity_every, sheet_frames=0, expected_frames=total or None,
                                 progress=not args.no_progress, blend_weights=ref_weights).report
    except (EvalInputError, FacesetError, IdentityModelError, ValueError) as exc:
        print(f"swapcam eval: {exc}", file=sys.stderr)
        return 1
    report = {
        "input": str(args.input),
        "swapped": str(args.swapped) if args.swapped else None,
        "model": str(args.model) if args.model else None,
        "target_faceset": str(args.target),
        **result.report,
    }
    if reference is not None:
        report["reference"] = {"one_photo": str(args.reference), **reference}
    write_text(args.out / "eval.json", json.dumps(report, indent=2))
    rows = {(args.model or args.swapped).name: report}
    if reference is not None:
        rows[f"one-photo swap ({args.reference.name}), no training"] = reference
    write_text(args.out / "eval.md", f"`swapcam eval` of {args.input.name} against {args.target.name}\n\n"
               + markdown_table(rows))
    eval_curves_png(report, args.out / "eval_curves.png")
    if result.pairs:
        contact_sheet_png(result.pairs, args.out / "contact_sheet.png")
    ident, temp = report["identity"], report["temporal"]
    print(f"identity: cosine to target {_fmt(ident['similarity_to_target']['mean'])} "
          f"(input's own {_fmt(ident['input_similarity_to_target']['mean'])}), "
          f"dlib distance {_fmt(ident['dlib_distance_to_target']['mean'])}, top-1 {_fmt(ident['top1_accuracy'], 2)}")
    print(f"pose error {_fmt(report['pose_error_deg']['mean_of_axes']['mean'], 2)} deg, "
          f"expression error {_fmt(report['expression_error_iod']['mean'], 4)} IOD")
    detail = report["detail"]
    print(f"sharpness {_fmt(detail['sharpness_ratio']['mean'])} of the input's; ghosting (face interior left partly "
          f"transparent) {_fmt(detail['ghosting_fraction']['mean'])}, ghosted frames {_fmt(detail['ghosted_frames'], 2)}"
          + ("" if args.model else " (n/a: needs --model)"))
    print(f"warp ratio {_fmt(temp['warp_ratio'])}, landmark jitter ratio {_fmt(temp['jitter_ratio'])} "
          f"({temp['still_frames']} still frames)")
    eyes = report["eyes"]
    print(f"eyes: openness correlation {_fmt(eyes['openness_correlation'])}, on the input's most-closed frames "
          f"{_fmt(eyes['closed']['input_openness'])} in, {_fmt(eyes['closed']['output_openness'])} out; "
          f"iris error {_fmt(eyes['iris_error_pct']['mean'], 1)} % of eye width")
    print(f"wrote {args.out / 'eval.json'}, eval.md, eval_curves.png, contact_sheet.png")
    return 0
