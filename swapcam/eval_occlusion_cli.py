"""`swapcam eval INPUT --model M --occluders all`: the occlusion mode of `swapcam eval` (``measure.eval_occlusion``).

Also the ``--occlusion on|off`` option every eval mode shares: whether the swap runs the live loop's
occlusion stage (``realtime.merging.occlusion``). Writes occlusion.json, occlusion.md and
occlusion_sheet.png (occluded input | output, lost occluder pixels tinted red) into --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from realtime.util.atomic_files import write_text


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from measure.eval_occlusion import SEGMENT, TOLERANCE
    from measure.occluders import KINDS

    g = parser.add_argument_group("occlusion")
    g.add_argument("--occlusion", choices=("on", "off"), default="on",
                   help="run the swap with the occlusion stage (hands, glasses, objects stay on top) or without")
    g.add_argument("--occlusion-model", type=Path, default=None,
                   help="occlusion model (default: the shipped models/occlusion.onnx)")
    g.add_argument("--occluders", default=None, metavar="KINDS",
                   help=f"occlusion mode: draw moving synthetic occluders over INPUT ('all' or some of {','.join(KINDS)}) "
                        "and score what the swap (--model) keeps; no --target needed")
    g.add_argument("--occluder-segment", type=int, default=SEGMENT, help="frames per occluder before the next one")
    g.add_argument("--occluder-tolerance", type=int, default=TOLERANCE,
                   help="grey levels (per channel) within which an output pixel counts as the occluder kept")


def occlusion_stage(args: argparse.Namespace):
    """The OcclusionMasker that --occlusion asks for, or None (off)."""
    if getattr(args, "occlusion", "off") != "on":
        return None
    from realtime.merging.occlusion import open_occlusion

    masker = open_occlusion(args.occlusion_model)
    print(f"swapcam eval: {masker.describe()}", flush=True)
    return masker


def _kinds(text: str) -> list[str]:
    from measure.occluders import KINDS

    return list(KINDS) if text.strip() == "all" else [k.strip() for k in text.split(",") if k.strip()]


def main(args: argparse.Namespace) -> int:
    from measure.eval_occlusion import evaluate_occlusion, markdown_table
    from measure.eval_swap import swap_frames
    from measure.evaluate import EvalInputError, open_frames, read_frames
    from measure.report_plots import contact_sheet_png
    from realtime.merging.merge import MergeSettings
    from realtime.merging.occlusion import OcclusionModelError
    from realtime.swap.swappers import open_swapper
    from swapcam.eval_cli import photo_settings

    if args.model is None:
        print("swapcam eval: --occluders needs --model (the swap to score)", file=sys.stderr)
        return 2
    try:
        source = open_frames(args.input)
        source.close()
        frames = list(read_frames(args.input, args.max_frames))
        swapper = open_swapper(args.model, **photo_settings(args.photo))
        print(f"swapcam eval: {swapper.describe()}", flush=True)
        masker = occlusion_stage(args)
        merge = MergeSettings(color=args.color).validate()

        def swap(clip, occlusion: bool):
            return swap_frames(clip, args.model, fps=source.fps, swapper=swapper, merge=merge,
                               occlusion=masker if occlusion else None, eyes=args.eyes)

        report, pairs = evaluate_occlusion(frames, swap, occlusion=masker is not None, kinds=_kinds(args.occluders),
                                           tolerance=args.occluder_tolerance, segment=args.occluder_segment,
                                           progress=not args.no_progress)
    except (EvalInputError, OcclusionModelError, ValueError) as exc:
        print(f"swapcam eval: {exc}", file=sys.stderr)
        return 1
    report = {"input": str(args.input), "model": str(args.model),
              "occlusion_model": str(masker.model.path) if masker else None, "eyes": args.eyes, **report}
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "occlusion.json", json.dumps(report, indent=2))
    name = f"{args.model.name}, occlusion {args.occlusion}"
    write_text(args.out / "occlusion.md", f"`swapcam eval --occluders` of {args.input.name} (kept share / unoccluded "
               f"change ratio per kind)\n\n" + markdown_table({name: report}))
    if pairs:
        contact_sheet_png(pairs, args.out / "occlusion_sheet.png", columns=4)
    for kind, r in report["kinds"].items():
        kept, ratio, same = r["kept_share"], r["unoccluded_change_ratio"], r["unoccluded_change_ratio_same_setting"]
        f3 = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"{kind:>14}: kept {f3(kept)} of {r['occluder_pixels_in_face']} occluder pixels in the face "
              f"({r['frames_with_occluder_in_face']} frames); unoccluded change ratio {f3(ratio)} "
              f"({f3(same)} of the clean clip's with this setting); kept flicker {f3(r['kept_flicker'])}")
    if report["clean_change_ratio"] is not None:
        print(f"clean clip (no occluders): change ratio {report['clean_change_ratio']:.3f} of the swap without occlusion")
    print(f"wrote {args.out / 'occlusion.json'}, occlusion.md, occlusion_sheet.png")
    return 0
