"""`swapcam extract INPUT... --out FACESET`: videos, image folders and images -> an aligned faceset.

After extraction, optional quality passes run over the whole faceset (new and earlier faces):
drop blurry faces, small faces and near-duplicates, then write a contact sheet to review. With no
INPUT, only those passes run on an existing faceset.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from realtime.face.alignment import FACE_TYPES
from training.extract import ExtractOptions, ExtractState, ExtractSummary, extract
from training.faceset import FaceRecord, Faceset, FacesetError
from training.quality import DedupeThresholds, contact_sheet, near_duplicates, too_blurry, too_small


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="video files, folders of images, or image files; none: only run the quality "
                             "passes on the existing --out faceset")
    parser.add_argument("--out", required=True, type=Path, metavar="FACESET",
                        help="faceset folder to create or add to (a non-empty folder that is not a faceset is refused)")
    parser.add_argument("--face-type", default="whole_face", choices=list(FACE_TYPES),
                        help="DeepFaceLab face type: how much of the head the aligned crop covers")
    parser.add_argument("--size", type=int, default=256, help="side of the aligned face images in pixels")
    parser.add_argument("--every-nth", type=int, default=1, metavar="N", help="take every N-th video frame")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N",
                        help="read at most N frames of each video (None: every frame)")
    parser.add_argument("--max-faces", type=int, default=1, metavar="N",
                        help="keep at most N faces per frame (the largest ones)")
    parser.add_argument("--min-face-size", type=float, default=0.0, metavar="PX",
                        help="drop faces smaller than PX pixels (larger side of the landmark box) in the source frame")
    parser.add_argument("--min-sharpness", type=float, default=0.0, metavar="V",
                        help="drop blurry faces: variance of the Laplacian over the aligned face below V "
                             "(depends on --size; look at the contact sheet's figures to choose)")
    parser.add_argument("--dedupe", action="store_true",
                        help="drop near-duplicate faces (same landmarks and appearance as a face kept before)")
    parser.add_argument("--dedupe-landmarks", type=float, default=DedupeThresholds.landmarks, metavar="F",
                        help="near-duplicate: largest aligned-landmark distance below F x the resolution")
    parser.add_argument("--dedupe-appearance", type=float, default=DedupeThresholds.appearance, metavar="F",
                        help="near-duplicate: 1 - correlation of 16x16 grey thumbnails below F")
    parser.add_argument("--contact-sheet", type=Path, default=None, metavar="PNG",
                        help="write a contact sheet of the faceset (sampled faces + statistics) to this PNG")
    parser.add_argument("--crop-scale", type=float, default=1.0,
                        help="crop side over DeepFaceLab's crop of the face type (below 1 tighter); the trained model "
                             "records it and the live loop cuts faces the same way (e.g. 0.9: DeepFaceLive's default "
                             "face coverage 2.2)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")


def _options(args: argparse.Namespace) -> ExtractOptions:
    return ExtractOptions(
        face_type=args.face_type,
        size=args.size,
        every_nth=args.every_nth,
        max_frames=args.max_frames,
        min_face_size=args.min_face_size,
        max_faces=args.max_faces,
        min_sharpness=args.min_sharpness,
        progress=not args.no_progress,
        crop_scale=args.crop_scale,
    )


def clean_faceset(fs: Faceset, args: argparse.Namespace, summary: ExtractSummary) -> None:
    """Run the quality passes over the whole faceset; dropped faces' frames are remembered so a re-run
    does not extract them again."""
    drop: dict[str, tuple[FaceRecord, str]] = {}
    for rec in too_small(fs.records, args.min_face_size):
        drop.setdefault(rec.file, (rec, f"smaller than --min-face-size {args.min_face_size:g} px"))
    for rec in too_blurry(fs.records, args.min_sharpness):
        drop.setdefault(rec.file, (rec, f"blurrier than --min-sharpness {args.min_sharpness:g}"))
    if args.dedupe:
        keep_now = Faceset(fs.path, fs.header, [r for r in fs.records if r.file not in drop])
        thresholds = DedupeThresholds(landmarks=args.dedupe_landmarks, appearance=args.dedupe_appearance)
        for rec in near_duplicates(keep_now, thresholds):
            drop.setdefault(rec.file, (rec, "near-duplicate (--dedupe)"))
    if not drop:
        return
    state = ExtractState(fs.path)
    for rec, why in drop.values():
        summary.drop(why)
        state.mark(rec.source, rec.frame)
    state.save()
    fs.rewrite([r for r in fs.records if r.file not in drop])


def main(args: argparse.Namespace) -> int:
    try:
        options = _options(args)
    except ValueError as exc:
        print(f"swapcam extract: {exc}", file=sys.stderr)
        return 2
    if not args.inputs and not Faceset.is_faceset(args.out):
        print(f"swapcam extract: no INPUT given and {args.out} is not a faceset; nothing to do", file=sys.stderr)
        return 2
    try:
        summary = extract(args.inputs, args.out, options)
        fs = Faceset.open(args.out)
    except FacesetError as exc:
        print(f"swapcam extract: {exc}", file=sys.stderr)
        return 2
    clean_faceset(fs, args, summary)
    print(summary.format())
    print(f"faceset {args.out}: {len(fs)} faces ({fs.face_type}, {fs.resolution} px)")
    if args.contact_sheet is not None:
        print(f"contact sheet: {contact_sheet(fs, args.contact_sheet)}")
    if summary.errors:
        print(f"swapcam extract: {len(summary.errors)} input(s) failed (see ERROR lines above)", file=sys.stderr)
        return 1
    return 0
