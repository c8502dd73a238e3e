"""Recordings: what a crash leaves in the file, and what the writer costs and keeps of the picture.

    python -m measure.recording_bench [--kill-at 15,45,100,217,300] [--quality] [--out recording_bench]

**Kill test** (``kill_run``): a real recording process (``--child``: the built-in demo source at
1280x720 with a frame number stamped into each frame by ``measure.bench_stamp``, paced at 30 fps into
``VideoFileSink``) is started in its own process group and killed with SIGKILL, ffmpeg with it (as a
power cut would), after it has handed N frames to the recorder. The file is then decoded by the ffmpeg
binary: how many frames it holds, whether they are frames 0, 1, 2, ... with none missing, how many of
the N handed over are lost, and whether ffmpeg reports any error.

**Quality and cost** (``--quality``): 12 s of a real camera clip (``../shared/data``'s helmet selfie,
else the demo source) at 1280x720 recorded through ``VideoFileSink`` at several x264 settings, and
through OpenCV's MPEG-4 Part 2 writer (what swapcam used before): PSNR of the decoded file against
the frames given, bitrate, and the encoder's CPU time per frame.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from measure.bench_stamp import read_stamp, write_stamp
from realtime.frames.recorder import DEFAULT_CRF, DEFAULT_PRESET, X264_PARAMS, VideoFileSink, ffmpeg_exe

SIZE = (1280, 720)
FPS = 30.0
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def demo_frames(n: int = 60, size: tuple[int, int] = SIZE) -> list[np.ndarray]:
    """``n`` frames of the built-in demo source (the moving astronaut), resized to ``size``."""
    from realtime.frames.demo_source import DemoSource

    source = DemoSource(seconds=n / FPS + 1, realtime=False)
    frames = [cv2.resize(source.read(), size, interpolation=cv2.INTER_LINEAR) for _ in range(n)]
    source.close()
    return frames


def decode(path: str | Path, size: tuple[int, int] = SIZE) -> tuple[list[np.ndarray], str]:
    """Every frame the ffmpeg binary decodes from ``path`` (BGR) and what it said on stderr (errors only)."""
    w, h = size
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path),
                           "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "bgr24", "-"], capture_output=True)
    data = proc.stdout
    n = len(data) // (w * h * 3)
    frames = [np.frombuffer(data, np.uint8, w * h * 3, i * w * h * 3).reshape(h, w, 3) for i in range(n)]
    return frames, proc.stderr.decode("utf-8", "replace").strip()


def child_main(path: str, seconds: float, fps: float = FPS) -> int:
    """The recording process of the kill test: stamped demo frames, paced at ``fps``, into ``path``.

    Prints ``<frame number> <write ms>`` after each frame is handed to the recorder (flushed), so the
    parent knows how many frames the recorder had when it killed us.
    """
    frames = demo_frames()
    sink = VideoFileSink(path, fps=fps, on_error=lambda m: print(f"ERROR {m}", flush=True))
    start = time.perf_counter()
    n = int(seconds * fps)
    for i in range(n):
        due = start + i / fps
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        frame = frames[i % len(frames)].copy()
        write_stamp(frame, i)
        t = time.perf_counter()
        sink.write(frame)
        print(f"{i} {(time.perf_counter() - t) * 1000:.3f}", flush=True)
    sink.close()
    print(f"CLOSED written {sink.written} dropped {sink.dropped}", flush=True)
    return 0


def start_child(path: Path, seconds: float, *extra: str) -> subprocess.Popen:
    """The recording process, in its own session (so a kill of its group takes ffmpeg too)."""
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", "measure.recording_bench", "--child", str(path), "--seconds",
                             str(seconds), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=repo, start_new_session=True)


def _has_fragment(path: Path) -> bool:
    """Whether the recording holds its first movie fragment (before it, a kill leaves a file with no frames)."""
    try:
        return b"moof" in path.read_bytes()
    except OSError:
        return False


def kill_run(path: Path, kill_after: int, seconds: float = 60.0, *, fragment_first: bool = False) -> dict:
    """Record, SIGKILL the whole process group once ``kill_after`` frames were handed over, read the file.

    ``fragment_first``: and not before the file holds its first fragment (the encoder's start-up, ~0.5 s on a
    quiet machine, longer on a loaded one, is then not what is measured)."""
    proc = start_child(path, seconds)
    handed, write_ms, ready = 0, [], not fragment_first
    try:
        for line in proc.stdout:
            parts = line.split()
            if parts and parts[0].isdigit():
                handed = int(parts[0]) + 1
                write_ms.append(float(parts[1]))
                ready = ready or _has_fragment(path)
                if handed >= kill_after and ready:
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
    time.sleep(0.2)  # the kernel reaps ffmpeg (same group) too; nothing more is written after this
    frames, errors = decode(path)
    stamps = [read_stamp(f) for f in frames]
    last = stamps[-1] if stamps and stamps[-1] is not None else -1
    known = [s for s in stamps if s is not None]
    return {"handed": handed, "decoded": len(frames), "unreadable_stamps": len(stamps) - len(known),
            "increasing": all(b > a for a, b in zip(known, known[1:])),
            "missing_before_last": (last + 1 - len(set(known))) if known else 0, "last_frame": last,
            "lost": handed - 1 - last, "lost_s": (handed - 1 - last) / FPS,
            "ffmpeg_errors": errors, "bytes": path.stat().st_size if path.exists() else 0,
            "write_ms_median": float(np.median(write_ms)) if write_ms else None,
            "write_ms_p99": float(np.percentile(write_ms, 99)) if write_ms else None}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def quality_clip(seconds: float = 12.0) -> tuple[list[np.ndarray], str]:
    """A real camera clip at 1280x720 (the shared helmet selfie, cropped to 16:9), else the demo source."""
    from measure.watermark_bench import load_clip

    spec = "video/helmet_selfie.mp4" if (SHARED / "video/helmet_selfie.mp4").exists() else "demo"
    frames, _, name = load_clip(spec, seconds)
    return frames, name


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def record_quality(frames: list[np.ndarray], folder: Path, name: str, **settings) -> dict:
    """Record ``frames`` (not live: every frame) with ``settings``; PSNR, kb/s, encoder CPU ms per frame."""
    path = folder / f"{name}.mp4"
    cpu = _children_cpu_s()
    t = time.perf_counter()
    if settings.pop("opencv", False):
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
        for f in frames:
            writer.write(f)
        writer.release()
        wall = time.perf_counter() - t
        cpu_ms = wall * 1000 / len(frames)  # in this process, one thread: its wall time
    else:
        sink = VideoFileSink(path, fps=FPS, live=False, **settings)
        for f in frames:
            sink.write(f)
        sink.close()
        wall = time.perf_counter() - t
        cpu_ms = (_children_cpu_s() - cpu) * 1000 / len(frames)
    decoded, _ = decode(path)
    n = min(len(decoded), len(frames))
    luma = [psnr(cv2.cvtColor(decoded[i], cv2.COLOR_BGR2GRAY), cv2.cvtColor(frames[i], cv2.COLOR_BGR2GRAY))
            for i in range(n)]
    return {"setting": name, "frames": len(decoded), "psnr_db": float(np.mean([psnr(decoded[i], frames[i]) for i in range(n)])),
            "psnr_luma_db": float(np.mean(luma)),
            "kbps": path.stat().st_size * 8 / (len(frames) / FPS) / 1000, "cpu_ms_per_frame": cpu_ms,
            "wall_s": wall}


QUALITY_SETTINGS = {
    f"x264 {DEFAULT_PRESET} CRF {DEFAULT_CRF}, bounded delay (default: {X264_PARAMS})": {},
    f"x264 {DEFAULT_PRESET} CRF {DEFAULT_CRF}, x264's own lookahead (10 frames + 3 B-frames)": {"x264_params": ""},
    f"x264 {DEFAULT_PRESET} CRF {DEFAULT_CRF}, rc-lookahead=5:bframes=1":
        {"x264_params": "rc-lookahead=5:bframes=1:threads=2"},
    f"x264 {DEFAULT_PRESET} CRF {DEFAULT_CRF}, zero latency":
        {"x264_params": "rc-lookahead=0:bframes=0:sync-lookahead=0:sliced-threads=1"},
    f"x264 {DEFAULT_PRESET} CRF 23, bounded delay": {"crf": 23},
    f"x264 superfast CRF {DEFAULT_CRF}, bounded delay": {"preset": "superfast"},
    "OpenCV mp4v (MPEG-4 Part 2, before)": {"opencv": True},
}


def main(argv: list[str] | None = None) -> int:
    from realtime.util.atomic_files import write_text

    p = argparse.ArgumentParser(prog="python -m measure.recording_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kill-at", default="15,45,100,217,300", help="frames handed to the recorder before each kill")
    p.add_argument("--quality", action="store_true", help="also measure quality and cost per setting")
    p.add_argument("--out", type=Path, default=Path("recording_bench"), help="folder for table.md and result.json")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child_main(args.child, args.seconds)
    load = os.getloadavg()
    lines = ["| killed after (frames handed to the recorder) | frames in the file | last frame in the file "
             "| frames missing before it | lost at the end, frames (s) | ffmpeg errors | write() ms median / p99 |",
             "|---|---|---|---|---|---|---|"]
    kills = []
    with tempfile.TemporaryDirectory(prefix="swapcam_rec_") as tmp:
        for k in (int(v) for v in args.kill_at.split(",")):
            r = kill_run(Path(tmp) / f"kill_{k}.mp4", k)
            kills.append(r)
            lines.append(f"| {r['handed']} ({r['handed'] / FPS:.1f} s) | {r['decoded']} | {r['last_frame']} "
                         f"| {r['missing_before_last']} | {r['lost']} ({r['lost_s']:.2f} s) "
                         f"| {' '.join(r['ffmpeg_errors'].split())[:80] or 'none'} "
                         f"| {r['write_ms_median']:.2f} / {r['write_ms_p99']:.2f} |")
            print(lines[-1], flush=True)
        rows = []
        if args.quality:
            frames, clip = quality_clip()
            lines += ["", f"Quality and cost, {len(frames)} frames of {clip} at {SIZE[0]}x{SIZE[1]}:", "",
                      "| writer | PSNR dB, luma / BGR | kb/s | encoder CPU ms/frame |", "|---|---|---|---|"]
            for name, settings in QUALITY_SETTINGS.items():
                r = record_quality(frames, Path(tmp), f"q{len(rows)}", **settings)
                r["setting"] = name
                rows.append(r)
                lines.append(f"| {name} | {r['psnr_luma_db']:.2f} / {r['psnr_db']:.2f} | {r['kbps']:.0f} "
                             f"| {r['cpu_ms_per_frame']:.1f} |")
                print(lines[-1], flush=True)
    lines.append(f"\nLoad average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; at end: "
                 + " ".join(f"{v:.2f}" for v in os.getloadavg()) + ".")
    table = "\n".join(lines) + "\n"
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "table.md", table)
    write_text(args.out / "result.json", json.dumps({"kills": kills, "quality": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
