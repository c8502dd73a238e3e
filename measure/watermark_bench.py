"""How well the output watermark survives what calls and streams do to video: the robustness table.

    python -m measure.watermark_bench [--seconds 20] [--clips ...] [--out watermark_bench]

Marked clips are made at 1280x720 from the development videos in ../shared/data (cropped to 16:9
and resized) or, where that folder is absent, from the built-in demo source; each is marked with a
real payload and put through every attack; each attack ends in an H.264 encode (libx264, CRF 28,
preset veryfast, the OBS default) through the ffmpeg binary that the ``imageio-ffmpeg`` wheel ships
(this OpenCV build cannot write H.264). The decoded video is cut into 2-second windows and each
window is detected on its own. False alarms are counted over every unmarked 2-second window of
every clip in ../shared/data and every still there, plus the package-shipped faces.

Columns: detection rate (windows whose decoded payload is the embedded one), wrong payloads,
coded-bit error rate before decoding, message-bit errors after it, median sync z, PSNR of the marked
frames against the unmarked ones, and the embedding cost per frame (median, ms).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from measure.watermark_detect import Z_THRESHOLD, Detection, detect_frames, viterbi_decode
from realtime.marking.marker import OutputMarker
from realtime.marking.watermark import Payload, Watermarker, conv_encode

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CLIPS = ("video/grid_s26.mp4", "video/helmet_selfie.mp4", "video/grid_s1.mp4", "video/grid_s4.mp4")
WIDTH, HEIGHT = 1280, 720
CRF = 28
PRESET = "veryfast"
WINDOW_S = 2.0


def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped inside the imageio-ffmpeg wheel (has libx264)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def h264_roundtrip(frames: list[np.ndarray], fps: float, *, crf: int = CRF, size: tuple[int, int] | None = None,
                   preset: str = PRESET) -> list[np.ndarray]:
    """Encode BGR frames with libx264 (yuv420p, CRF ``crf``; resized to ``size`` = (w, h) first when given)
    into a temporary .mp4 and decode it back: the frames a viewer's decoder would show."""
    import imageio_ffmpeg

    h, w = frames[0].shape[:2]
    params = ["-crf", str(crf), "-preset", preset]
    if size is not None and size != (w, h):
        params = ["-vf", f"scale={size[0]}:{size[1]}:flags=bicubic", *params]
    with tempfile.TemporaryDirectory(prefix="swapcam_h264_") as tmp:
        path = str(Path(tmp) / "clip.mp4")
        writer = imageio_ffmpeg.write_frames(path, (w, h), pix_fmt_in="bgr24", fps=fps, codec="libx264",
                                             output_params=params, macro_block_size=2, ffmpeg_log_level="error")
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
        reader = imageio_ffmpeg.read_frames(path, pix_fmt="bgr24")
        meta = next(reader)
        ow, oh = meta["size"]
        out = [np.frombuffer(buf, np.uint8).reshape(oh, ow, 3).copy() for buf in reader]
    return out


def brightness(frames: list[np.ndarray], gain: float) -> list[np.ndarray]:
    return [cv2.convertScaleAbs(f, alpha=gain) for f in frames]


def crop(frames: list[np.ndarray], keep: float = 0.9, left: float = 0.07, top: float = 0.03) -> list[np.ndarray]:
    """Keep ``keep`` of the width and height, starting at (left, top) fractions (off the cell grid)."""
    h, w = frames[0].shape[:2]
    x0, y0 = int(round(left * w)), int(round(top * h))
    cw, ch = int(round(keep * w)) // 2 * 2, int(round(keep * h)) // 2 * 2
    return [np.ascontiguousarray(f[y0:y0 + ch, x0:x0 + cw]) for f in frames]


@dataclass(frozen=True)
class Attack:
    name: str
    apply: Callable[[list[np.ndarray], float], list[np.ndarray]]


ATTACKS: tuple[Attack, ...] = (
    Attack("none (lossless)", lambda fr, fps: fr),
    Attack(f"H.264 CRF {CRF} 720p", lambda fr, fps: h264_roundtrip(fr, fps)),
    Attack(f"640x360 + H.264 CRF {CRF}", lambda fr, fps: h264_roundtrip(fr, fps, size=(640, 360))),
    Attack(f"H.264 CRF {CRF} 720p, then 640x360 + CRF {CRF}",
           lambda fr, fps: h264_roundtrip(h264_roundtrip(fr, fps), fps, size=(640, 360))),
    Attack(f"brightness +10% + H.264 CRF {CRF}", lambda fr, fps: h264_roundtrip(brightness(fr, 1.1), fps)),
    Attack(f"brightness -10% + H.264 CRF {CRF}", lambda fr, fps: h264_roundtrip(brightness(fr, 0.9), fps)),
    Attack(f"crop 10% (1152x648) + H.264 CRF {CRF}", lambda fr, fps: h264_roundtrip(crop(fr), fps)),
)


def to_720p(frame: np.ndarray) -> np.ndarray:
    """Centre-crop to 16:9 and resize to 1280x720 (bicubic)."""
    h, w = frame.shape[:2]
    if w * 9 > h * 16:
        cw = h * 16 // 9
        frame = frame[:, (w - cw) // 2:(w - cw) // 2 + cw]
    else:
        ch = w * 9 // 16
        frame = frame[(h - ch) // 2:(h - ch) // 2 + ch]
    return cv2.resize(frame, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)


def load_clip(spec: str, seconds: float) -> tuple[list[np.ndarray], float, str]:
    """(720p frames, fps, name) of a clip: a path under ../shared/data, a video path, or 'demo'."""
    from realtime.frames.sources import open_source

    path = SHARED / spec if (SHARED / spec).exists() else Path(spec)
    source = open_source("demo" if spec == "demo" else str(path), realtime=False, loop=False,
                         demo_seconds=seconds + 1)
    fps = float(getattr(source, "fps", 25.0) or 25.0)
    frames = []
    try:
        while len(frames) < int(round(seconds * fps)):
            frame = source.read()
            if frame is None:
                break
            frames.append(to_720p(frame))
    finally:
        source.close()
    return frames, fps, Path(spec).stem


def windows(frames: list[np.ndarray], fps: float, seconds: float = WINDOW_S) -> Iterator[list[np.ndarray]]:
    """Consecutive non-overlapping windows of ``seconds`` (a shorter tail is dropped unless it is all)."""
    n = max(1, int(round(seconds * fps)))
    if len(frames) < n:
        yield frames
        return
    for i in range(0, len(frames) - n + 1, n):
        yield frames[i:i + n]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@dataclass
class AttackRow:
    """Figures of one attack over every window of every clip, marked and unmarked."""

    attack: str
    windows: int = 0
    detected: int = 0
    wrong_payload: int = 0
    unmarked_windows: int = 0
    false_alarms: int = 0
    coded_bit_errors: list = field(default_factory=list)  # fraction per marked window
    message_bit_errors: list = field(default_factory=list)  # count per marked window (of 72)
    z: list = field(default_factory=list)
    detect_ms: list = field(default_factory=list)  # per frame, marked windows

    @property
    def rate(self) -> float:
        return self.detected / self.windows if self.windows else float("nan")


def score_window(frames: list[np.ndarray], payload: Payload) -> tuple[Detection, float, int]:
    """Detect in a window; also the coded-bit error rate and message-bit errors against ``payload``
    (of the tile the detector chose: where it found no sync, about half the bits are wrong)."""
    det = detect_frames(frames)
    truth = payload.message_bits()
    coded_err = float(np.mean((det.soft_bits < 0).astype(np.uint8) != conv_encode(truth)))
    msg_err = int(np.sum(viterbi_decode(det.soft_bits) != truth))
    return det, coded_err, msg_err


def run_robustness(clips: list[str], seconds: float, payload: Payload, attacks=ATTACKS, progress=True) -> dict:
    """For each clip: every attack on the unmarked clip (false alarms), then on the marked clip
    (detection, bit errors); returns the table's rows and the embedding figures."""
    from tqdm import tqdm

    rows = {a.name: AttackRow(a.name) for a in attacks}
    psnrs, embed_ms, marker_ms = [], [], []
    marker = Watermarker(payload)
    output_marker = OutputMarker(payload.fingerprint)  # what the live loop runs: label + watermark
    for spec in clips:
        frames, fps, name = load_clip(spec, seconds)
        if not frames:
            continue
        for attack in tqdm(attacks, desc=f"{name} unmarked", disable=not progress):
            row = rows[attack.name]
            for win in windows(attack.apply(frames, fps), fps):
                row.unmarked_windows += 1
                row.false_alarms += int(detect_frames(win).found)
        for f in frames:  # marked in place: a 20-s 720p clip is 1.4 GB, no second copy is kept
            original, labelled = f.copy(), f.copy()
            t = time.perf_counter()
            output_marker(labelled)
            marker_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            marker.embed(f)
            embed_ms.append((time.perf_counter() - t) * 1000)
            psnrs.append(psnr(f, original))
        for attack in tqdm(attacks, desc=f"{name} marked", disable=not progress):
            row = rows[attack.name]
            for win in windows(attack.apply(frames, fps), fps):
                t = time.perf_counter()
                det, coded_err, msg_err = score_window(win, payload)
                row.detect_ms.append((time.perf_counter() - t) * 1000 / len(win))
                row.windows += 1
                row.detected += int(det.found and det.payload == payload)
                row.wrong_payload += int(det.found and det.payload != payload)
                row.coded_bit_errors.append(coded_err)
                row.message_bit_errors.append(msg_err)
                row.z.append(det.z)
    return {"rows": [rows[a.name] for a in attacks], "psnr_db": psnrs, "embed_ms": embed_ms, "marker_ms": marker_ms}


def unmarked_inputs(include_shared: bool = True) -> Iterator[tuple[str, list[np.ndarray]]]:
    """(name, frames) of every unmarked 2-second window of the shared clips, every shared still, and
    the package faces (one still each)."""
    import matplotlib.cbook
    import skimage.data

    from measure.evaluate import read_frames

    yield "astronaut (skimage)", [np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])]
    yield "grace_hopper (matplotlib)", [cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg",
                                                                                        asfileobj=False)))]
    if not include_shared or not SHARED.exists():
        return
    for clip in CLIPS:
        cap = cv2.VideoCapture(str(SHARED / clip))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        cap.release()
        buf: list[np.ndarray] = []
        n = int(round(WINDOW_S * fps))
        for i, frame in enumerate(read_frames(SHARED / clip)):
            buf.append(frame)
            if len(buf) == n:
                yield f"{clip} window {i // n}", buf
                buf = []
    for path in sorted((SHARED / "stills").rglob("*.jpg")):
        image = cv2.imread(str(path))
        if image is not None:
            yield str(path.relative_to(SHARED)), [image]


def run_false_alarms(include_shared: bool = True, progress: bool = True) -> dict:
    """Detect on every unmarked input: how many were 'found', and the highest sync z seen."""
    from tqdm import tqdm

    trials, alarms, zs, names = 0, 0, [], []
    for name, frames in tqdm(unmarked_inputs(include_shared), desc="unmarked", disable=not progress):
        det = detect_frames(frames)
        trials += 1
        zs.append(det.z)
        if det.found:
            alarms += 1
            names.append(name)
    return {"trials": trials, "false_alarms": alarms, "alarm_inputs": names,
            "z_max": max(zs) if zs else None, "z_p99": float(np.percentile(zs, 99)) if zs else None}


def markdown(result: dict, fa: dict | None) -> str:
    """The robustness table (markdown)."""
    ms, db = result["embed_ms"], result["psnr_db"]
    lines = ["| attack (then decoded) | detected, 2-s windows | wrong payload | false alarms, unmarked windows "
             "| coded-bit errors | message-bit errors (of 72) mean / max | sync z median | PSNR dB "
             "| embed ms/frame | detect ms/frame |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r.attack} | {r.detected}/{r.windows} ({100 * r.rate:.1f}%) | {r.wrong_payload} "
                     f"| {r.false_alarms}/{r.unmarked_windows} "
                     f"| {100 * statistics.mean(r.coded_bit_errors):.1f}% "
                     f"| {statistics.mean(r.message_bit_errors):.2f} / {max(r.message_bit_errors)} "
                     f"| {statistics.median(r.z):.1f} | {np.mean(db):.1f} | {np.median(ms):.2f} "
                     f"| {statistics.median(r.detect_ms):.1f} |")
    lines.append("")
    lines.append(f"PSNR of marked frames (watermark only): mean {np.mean(db):.2f} dB, min {np.min(db):.2f} dB. "
                 f"Watermark embedding {np.median(ms):.3f} ms per 1280x720 frame (median of {len(ms)}, p95 "
                 f"{np.percentile(ms, 95):.3f}); label + watermark (the live marker) "
                 f"{np.median(result['marker_ms']):.3f} ms (p95 {np.percentile(result['marker_ms'], 95):.3f}).")
    if fa is not None:
        lines.append(f"False alarms over every unmarked input (each 2-s window of each clip in ../shared/data at its own "
                     f"size, every still there, the package faces): {fa['false_alarms']} of {fa['trials']} "
                     f"({100 * fa['false_alarms'] / max(1, fa['trials']):.2f}%); highest sync z {fa['z_max']:.2f}, "
                     f"p99 {fa['z_p99']:.2f} (threshold {Z_THRESHOLD}, and the CRC must match).")
    return "\n".join(lines) + "\n"


def picture(frame: np.ndarray, payload: Payload, path: Path) -> Path:
    """A PNG to look at: a 1:1 crop of a marked 720p frame with its label, the same crop unmarked,
    and the difference x25 (grey = unchanged)."""
    from realtime.util.atomic_files import write_image

    marked = OutputMarker(payload.fingerprint)(frame.copy())
    h, w = frame.shape[:2]
    y0, x0 = h - 300, w - 480
    crop_m, crop_o = marked[y0:, x0:], frame[y0:, x0:]
    diff = np.clip((crop_m.astype(np.int16) - crop_o) * 25 + 128, 0, 255).astype(np.uint8)
    panels = []
    for image, title in ((crop_m, "marked (label + watermark), 1:1"), (crop_o, "unmarked"), (diff, "difference x25")):
        panel = image.copy()
        cv2.rectangle(panel, (0, 0), (panel.shape[1], 24), (0, 0, 0), -1)
        cv2.putText(panel, title, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        panels.append(panel)
    return write_image(path, np.hstack(panels))


def marking_cost(frames: int = 1000, size: tuple[int, int] = (WIDTH, HEIGHT)) -> dict:
    """ms per frame of the watermark alone and of the live marker (label + watermark) on fresh frames
    (copied in, untimed, like the merge's output): median and p95 over ``frames``, interleaved."""
    import skimage.data

    base = cv2.resize(np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1]), size)
    payload = Payload.now(bytes.fromhex("5ca1ab1e"))
    tools = {"watermark": Watermarker(payload).embed, "label + watermark": OutputMarker(payload.fingerprint)}
    times: dict[str, list[float]] = {name: [] for name in tools}
    frame = base.copy()
    for _ in range(frames):
        for name, mark in tools.items():
            np.copyto(frame, base)
            t = time.perf_counter()
            mark(frame)
            times[name].append((time.perf_counter() - t) * 1000)
    return {name: {"median_ms": float(np.median(v)), "p95_ms": float(np.percentile(v, 95)), "frames": len(v)}
            for name, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    import os

    from realtime.util.atomic_files import write_text

    p = argparse.ArgumentParser(prog="python -m measure.watermark_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", nargs="*", default=None, help="clips under ../shared/data or paths, or 'demo' (default: the "
                                                            "four shared videos, else demo)")
    p.add_argument("--seconds", type=float, default=16.0, help="seconds of each clip marked and attacked")
    p.add_argument("--no-false-alarms", action="store_true", help="skip the unmarked-input sweep")
    p.add_argument("--cost", action="store_true", help="only measure the marking cost per 1280x720 frame, then stop")
    p.add_argument("--out", type=Path, default=Path("watermark_bench"),
                   help="folder for table.md, result.json and watermark.png (a crop to look at)")
    args = p.parse_args(argv)
    if args.cost:
        before = os.getloadavg()
        for name, figures in marking_cost().items():
            print(f"{name}: {figures['median_ms']:.3f} ms per {WIDTH}x{HEIGHT} frame (median of {figures['frames']}, "
                  f"p95 {figures['p95_ms']:.3f})")
        print(f"load average before: {before[0]:.2f} {before[1]:.2f} {before[2]:.2f}; after: "
              + " ".join(f"{v:.2f}" for v in os.getloadavg()))
        return 0
    clips = args.clips or ([c for c in CLIPS if (SHARED / c).exists()] or ["demo"])
    payload = Payload.now(bytes.fromhex("5ca1ab1e"))
    load = os.getloadavg()
    result = run_robustness(clips, args.seconds, payload)
    fa = None if args.no_false_alarms else run_false_alarms()
    table = markdown(result, fa)
    table += (f"\nClips: {', '.join(clips)} ({args.seconds:g} s each, at {WIDTH}x{HEIGHT}); x264 preset {PRESET}. "
              f"Load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}.\n")
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "table.md", table)
    picture(load_clip(clips[0], 0.1)[0][0], payload, args.out / "watermark.png")
    write_text(args.out / "result.json", json.dumps({
        "rows": [asdict(r) | {"rate": r.rate} for r in result["rows"]],
        "psnr_db_mean": float(np.mean(result["psnr_db"])), "embed_ms_median": float(np.median(result["embed_ms"])),
        "false_alarms": fa, "clips": clips, "seconds": args.seconds}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
