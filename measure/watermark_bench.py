"""How well the output watermark survives what calls, streams and layouts do to video: the robustness table.

    python -m measure.watermark_bench [--seconds 16] [--clips ...] [--attacks SUBSTRING,...] [--out watermark_bench]
    python -m measure.watermark_bench --layouts docs/watermark_layouts.png    (four layouts, what was read)

Marked clips are made at 1280x720 from the development videos in ../shared/data (cropped to 16:9
and resized) or, where that folder is absent, from the built-in demo source; each is marked with a
real payload and put through every attack; each attack ends in an H.264 encode (libx264, CRF 28,
preset veryfast, the OBS default) through the ffmpeg binary that the ``imageio-ffmpeg`` wheel ships.
The decoded video is cut into 2-second windows and each window is detected on its own. The attacks
stream (frames in, decoded frames out, one window's residual at a time), so 1080p canvases fit in
memory.

The streamer's layouts: the clip as a picture-in-picture at 25, 33, 50 or 100 % of the width of a
1920x1080 canvas, at several places, over a game-like background (``game_background``: a scrolling
tiled world, moving sprites, a HUD with a live score) or a natural one (``natural_background``: a slow
pan over a photograph shipped with scikit-image); mirrored; rotated by +-2 and +-5 degrees (corners
black, as OBS shows a turned source).

False alarms: every attack is also run on the unmarked clip (a column of the table); and
``--false-alarms`` detects on every unmarked input there is: each 2-second window of every clip in
../shared/data at its own size, every still there, images shipped with scikit-image and matplotlib
(textures included: brick, grass, gravel), and synthetic pictures chosen to look like a tiled mark
(checkerboards, gratings, tiled noise, a game frame).

Columns: detection rate (windows whose decoded payload is the embedded one), wrong payloads,
coded-bit error rate before decoding, message-bit errors after it, median sync z, PSNR of the marked
frames against the unmarked ones, and the embedding and detection costs per frame (median, ms).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from measure.watermark_detect import Z_THRESHOLD, Detection, ResidualAverage, detect_residuals, viterbi_decode
from realtime.frames.recorder import ffmpeg_exe
from realtime.marking.marker import OutputMarker
from realtime.marking.watermark import AMPLITUDE, Payload, Watermarker, conv_encode

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CLIPS = ("video/grid_s26.mp4", "video/helmet_selfie.mp4", "video/grid_s1.mp4", "video/grid_s4.mp4")
WIDTH, HEIGHT = 1280, 720
CANVAS = (1920, 1080)
CRF = 28
PRESET = "veryfast"
WINDOW_S = 2.0


def h264_stream(frames: Iterable[np.ndarray], fps: float, *, crf: int = CRF, size: tuple[int, int] | None = None,
                preset: str = PRESET) -> Iterator[np.ndarray]:
    """Encode BGR frames with libx264 (yuv420p, CRF ``crf``; resized to ``size`` = (w, h) first when given)
    into a temporary file and decode it back, frame by frame: the frames a viewer's decoder would show."""
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        return
    h, w = first.shape[:2]
    ow, oh = size or (w, h)
    with tempfile.TemporaryDirectory(prefix="swapcam_h264_") as tmp:
        path = str(Path(tmp) / "clip.mkv")
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24",
               "-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", "pipe:0"]
        if (ow, oh) != (w, h):
            cmd += ["-vf", f"scale={ow}:{oh}:flags=bicubic"]
        cmd += ["-c:v", "libx264", "-crf", str(crf), "-preset", preset, "-pix_fmt", "yuv420p", path]
        encoder = subprocess.Popen(cmd, stdin=subprocess.PIPE)
        try:
            encoder.stdin.write(np.ascontiguousarray(first).tobytes())
            for frame in frames:
                encoder.stdin.write(np.ascontiguousarray(frame).tobytes())
        finally:
            encoder.stdin.close()
            encoder.wait()
        decoder = subprocess.Popen([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", path,
                                    "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
                                   stdout=subprocess.PIPE)
        n = ow * oh * 3
        try:
            while len(buf := decoder.stdout.read(n)) == n:
                yield np.frombuffer(buf, np.uint8).reshape(oh, ow, 3)
        finally:
            decoder.stdout.close()
            decoder.wait()


def h264_roundtrip(frames: list[np.ndarray], fps: float, *, crf: int = CRF, size: tuple[int, int] | None = None,
                   preset: str = PRESET) -> list[np.ndarray]:
    """``h264_stream`` into a list."""
    return list(h264_stream(frames, fps, crf=crf, size=size, preset=preset))


def brightness(frames: Iterable[np.ndarray], gain: float) -> list[np.ndarray]:
    return [cv2.convertScaleAbs(f, alpha=gain) for f in frames]


def crop(frames: Iterable[np.ndarray], keep: float = 0.9, left: float = 0.07, top: float = 0.03) -> list[np.ndarray]:
    """Keep ``keep`` of the width and height, starting at (left, top) fractions (off the cell grid)."""
    out = []
    for f in frames:
        h, w = f.shape[:2]
        x0, y0 = int(round(left * w)), int(round(top * h))
        cw, ch = int(round(keep * w)) // 2 * 2, int(round(keep * h)) // 2 * 2
        out.append(np.ascontiguousarray(f[y0:y0 + ch, x0:x0 + cw]))
    return out


def mirror(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Left-right flipped frames (a mirrored self-view)."""
    for f in frames:
        yield np.ascontiguousarray(f[:, ::-1])


def rotate(frames: Iterable[np.ndarray], degrees: float) -> Iterator[np.ndarray]:
    """Frames turned by ``degrees`` (counter-clockwise) about their centre, same size, corners black."""
    for f in frames:
        h, w = f.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
        yield cv2.warpAffine(f, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def game_background(size: tuple[int, int] = CANVAS, seed: int = 3) -> Iterator[np.ndarray]:
    """An endless game-like scene: a scrolling world of coloured tiles and shapes, moving sprites, a HUD
    with a health bar and a running score (deterministic)."""
    w, h = size
    rng = np.random.default_rng(seed)
    world = np.zeros((h + 600, w + 800, 3), np.uint8)
    tile = 48
    for y in range(0, world.shape[0], tile):  # a tiled ground with shading
        for x in range(0, world.shape[1], tile):
            base = np.array([60, 110, 60]) + rng.integers(-25, 25, 3)
            world[y:y + tile, x:x + tile] = np.clip(base, 0, 255)
    world = cv2.GaussianBlur(world, (0, 0), 1.0)
    for _ in range(500):
        x, y = int(rng.integers(0, world.shape[1])), int(rng.integers(0, world.shape[0]))
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        if rng.random() < 0.5:
            cv2.rectangle(world, (x, y), (x + int(rng.integers(10, 120)), y + int(rng.integers(10, 120))), colour, -1)
        else:
            cv2.circle(world, (x, y), int(rng.integers(5, 60)), colour, -1, cv2.LINE_AA)
    sprites = [(rng.uniform(0, w), rng.uniform(0, h), rng.uniform(-9, 9), rng.uniform(-6, 6),
                tuple(int(v) for v in rng.integers(0, 255, 3))) for _ in range(12)]
    t = 0
    while True:
        ox, oy = int(3 * t) % 800, int(1.5 * t) % 600
        frame = world[oy:oy + h, ox:ox + w].copy()
        for x, y, vx, vy, colour in sprites:
            cv2.circle(frame, (int(x + vx * t) % w, int(y + vy * t) % h), 30, colour, -1, cv2.LINE_AA)
        cv2.rectangle(frame, (20, 20), (420, 50), (0, 0, 120), -1)
        cv2.rectangle(frame, (20, 20), (20 + (t * 7) % 400, 50), (0, 0, 255), -1)
        cv2.putText(frame, f"SCORE {t * 13:07d}", (w - 440, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (255, 255, 255), 3,
                    cv2.LINE_AA)
        yield frame
        t += 1


def natural_background(size: tuple[int, int] = CANVAS, image: str = "rocket") -> Iterator[np.ndarray]:
    """An endless slow pan over a photograph shipped with scikit-image (enlarged to cover the canvas)."""
    import skimage.data

    w, h = size
    picture = getattr(skimage.data, image)()
    picture = np.ascontiguousarray((np.repeat(picture[:, :, None], 3, 2) if picture.ndim == 2 else picture)[:, :, 2::-1])
    scale = max(1.3 * w / picture.shape[1], 1.2 * h / picture.shape[0])
    big = cv2.resize(picture, (int(picture.shape[1] * scale), int(picture.shape[0] * scale)), interpolation=cv2.INTER_CUBIC)
    t = 0
    while True:
        ox = int((big.shape[1] - w) * (0.5 + 0.5 * np.sin(t / 90)))
        oy = int((big.shape[0] - h) * (0.5 + 0.5 * np.cos(t / 120)))
        yield np.ascontiguousarray(big[oy:oy + h, ox:ox + w])
        t += 1


def picture_in_picture(frames: Iterable[np.ndarray], scale: float, where: tuple[float, float],
                       background: Iterator[np.ndarray], canvas: tuple[int, int] = CANVAS) -> Iterator[np.ndarray]:
    """Each frame resized (bicubic, OBS's default scaler) to ``scale`` of the canvas width and placed at
    ``where`` (fractions of the free room: (0, 0) top-left, (1, 1) bottom-right) over the background."""
    cw, ch = canvas
    for frame, back in zip(frames, background):
        h, w = frame.shape[:2]
        pw = int(round(cw * scale)) // 2 * 2
        ph = min(ch, int(round(pw * h / w)) // 2 * 2)
        x0, y0 = int(round(where[0] * (cw - pw))), int(round(where[1] * (ch - ph)))
        out = back.copy()
        out[y0:y0 + ph, x0:x0 + pw] = cv2.resize(frame, (pw, ph), interpolation=cv2.INTER_CUBIC)
        yield out


@dataclass(frozen=True)
class Attack:
    name: str
    apply: Callable[[Iterable[np.ndarray], float], Iterable[np.ndarray]]


def _pip(scale: float, where: tuple[float, float], background: str) -> Attack:
    places = {(0.0, 0.0): "top-left", (1.0, 1.0): "bottom-right", (0.0, 1.0): "bottom-left", (1.0, 0.0): "top-right",
              (0.5, 0.5): "centre"}
    place = "(the whole canvas)" if scale >= 1.0 else places.get(where, f"at {where[0]:g},{where[1]:g}")
    make = game_background if background == "game" else natural_background
    return Attack(f"PiP {round(scale * 100)}% {place} over {background} (1920x1080) + H.264 CRF {CRF}",
                  lambda fr, fps: h264_stream(picture_in_picture(fr, scale, where, make()), fps))


ATTACKS: tuple[Attack, ...] = (
    Attack("none (lossless)", lambda fr, fps: fr),
    Attack(f"H.264 CRF {CRF} 720p", lambda fr, fps: h264_stream(fr, fps)),
    Attack(f"640x360 + H.264 CRF {CRF}", lambda fr, fps: h264_stream(fr, fps, size=(640, 360))),
    Attack(f"H.264 CRF {CRF} 720p, then 640x360 + CRF {CRF}",
           lambda fr, fps: h264_stream(h264_stream(fr, fps), fps, size=(640, 360))),
    Attack(f"brightness +10% + H.264 CRF {CRF}", lambda fr, fps: h264_stream(brightness(fr, 1.1), fps)),
    Attack(f"brightness -10% + H.264 CRF {CRF}", lambda fr, fps: h264_stream(brightness(fr, 0.9), fps)),
    Attack(f"crop 10% (1152x648) + H.264 CRF {CRF}", lambda fr, fps: h264_stream(crop(fr), fps)),
    _pip(0.25, (1.0, 1.0), "game"),
    _pip(0.25, (0.0, 0.0), "natural"),
    _pip(1 / 3, (0.0, 1.0), "game"),
    _pip(1 / 3, (0.37, 0.61), "natural"),
    _pip(0.5, (1.0, 0.0), "game"),
    _pip(0.5, (0.5, 0.5), "natural"),
    _pip(1.0, (0.0, 0.0), "game"),
    Attack(f"mirrored + H.264 CRF {CRF}", lambda fr, fps: h264_stream(mirror(fr), fps)),
    Attack(f"rotated +2 deg + H.264 CRF {CRF}", lambda fr, fps: h264_stream(rotate(fr, 2), fps)),
    Attack(f"rotated -2 deg + H.264 CRF {CRF}", lambda fr, fps: h264_stream(rotate(fr, -2), fps)),
    Attack(f"rotated +5 deg + H.264 CRF {CRF}", lambda fr, fps: h264_stream(rotate(fr, 5), fps)),
    Attack(f"rotated -5 deg + H.264 CRF {CRF}", lambda fr, fps: h264_stream(rotate(fr, -5), fps)),
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


def window_residuals(frames: Iterable[np.ndarray], fps: float, seconds: float = WINDOW_S
                     ) -> Iterator[tuple[ResidualAverage, float]]:
    """The residual average of each consecutive ``seconds`` window of a frame stream, and the seconds its
    frames took to add (a shorter tail is dropped unless it is all there is)."""
    n = max(1, int(round(seconds * fps)))
    acc, spent, complete = ResidualAverage(), 0.0, False
    for frame in frames:
        t = time.perf_counter()
        acc.add(frame)
        spent += time.perf_counter() - t
        if acc.frames == n:
            yield acc, spent
            acc, spent, complete = ResidualAverage(), 0.0, True
    if acc.frames and not complete:
        yield acc, spent


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
    unmarked_z: list = field(default_factory=list)
    coded_bit_errors: list = field(default_factory=list)  # fraction per marked window
    message_bit_errors: list = field(default_factory=list)  # count per marked window (of 72)
    z: list = field(default_factory=list)
    detect_ms: list = field(default_factory=list)  # per frame, marked windows
    marked: list = field(default_factory=list)  # per marked window: (z, payload right), to re-count at any threshold

    @property
    def rate(self) -> float:
        return self.detected / self.windows if self.windows else float("nan")


def score_detection(det: Detection, payload: Payload) -> tuple[float, int]:
    """The coded-bit error rate and message-bit errors of a detection against ``payload`` (of the tile the
    detector chose: where it found no sync, about half the bits are wrong)."""
    truth = payload.message_bits()
    coded_err = float(np.mean((det.soft_bits < 0).astype(np.uint8) != conv_encode(truth)))
    return coded_err, int(np.sum(viterbi_decode(det.soft_bits) != truth))


def detect_windows(frames: Iterable[np.ndarray], fps: float) -> Iterator[tuple[Detection, float]]:
    """Each 2-second window of a frame stream detected on its own: (detection, detection ms per frame)."""
    for acc, spent in window_residuals(frames, fps):
        t = time.perf_counter()
        det = detect_residuals(acc.means(), acc.frames)
        yield det, (spent + time.perf_counter() - t) * 1000 / acc.frames


def run_robustness(clips: list[str], seconds: float, payload: Payload, attacks=ATTACKS, progress=True,
                   amplitude: int = AMPLITUDE, after_clip: Callable[[dict], None] | None = None,
                   unmarked: bool = True) -> dict:
    """For each clip: every attack on the unmarked clip (false alarms), then on the marked clip
    (detection, bit errors); returns the table's rows and the embedding figures. ``after_clip`` is given
    the figures so far after each clip (a long run keeps what it measured)."""
    from tqdm import tqdm

    rows = {a.name: AttackRow(a.name) for a in attacks}
    psnrs, embed_ms, marker_ms = [], [], []
    marker = Watermarker(payload, amplitude)
    output_marker = OutputMarker(payload.fingerprint)  # what the live loop runs: label + watermark
    for spec in clips:
        frames, fps, name = load_clip(spec, seconds)
        if not frames:
            continue
        for attack in tqdm(attacks if unmarked else (), desc=f"{name} unmarked", disable=not progress):
            row = rows[attack.name]
            for det, _ in detect_windows(attack.apply(frames, fps), fps):
                row.unmarked_windows += 1
                row.unmarked_z.append(det.z)
                row.false_alarms += int(det.found)
        for f in frames:  # marked in place: a 16-s 720p clip is 1.1 GB, no second copy is kept
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
            for det, ms in detect_windows(attack.apply(frames, fps), fps):
                coded_err, msg_err = score_detection(det, payload)
                row.detect_ms.append(ms)
                row.windows += 1
                row.detected += int(det.found and det.payload == payload)
                row.wrong_payload += int(det.found and det.payload != payload)
                row.coded_bit_errors.append(coded_err)
                row.message_bit_errors.append(msg_err)
                row.z.append(det.z)
                row.marked.append((det.z, det.payload == payload))
        if after_clip is not None:
            after_clip({"rows": [rows[a.name] for a in attacks], "psnr_db": psnrs, "embed_ms": embed_ms,
                        "marker_ms": marker_ms})
    return {"rows": [rows[a.name] for a in attacks], "psnr_db": psnrs, "embed_ms": embed_ms, "marker_ms": marker_ms}


def synthetic_pictures() -> Iterator[tuple[str, np.ndarray]]:
    """Pictures made to look like a tiled mark to the detector (periodic at many periods, some turned):
    checkerboards, gratings, tiled noise, a game frame, plain noise and a flat grey."""
    rng = np.random.default_rng(11)
    h, w = HEIGHT, WIDTH
    yy, xx = np.mgrid[:h, :w]
    for period in (8, 12, 24, 48, 96, 128, 200):
        board = (((xx // (period // 2)) + (yy // (period // 2))) % 2 * 80 + 88).astype(np.uint8)
        yield f"checkerboard {period} px", board
        grating = (128 + 40 * np.sin(2 * np.pi * (xx * np.cos(0.05) + yy * np.sin(0.05)) / period)).astype(np.uint8)
        yield f"grating {period} px, 3 deg", grating
    for period in (64, 100, 150, 256, 384):
        tile = cv2.GaussianBlur(rng.integers(0, 255, (period, period), np.uint8), (0, 0), 1.5)
        tiled = np.tile(tile, (h // period + 1, w // period + 1))[:h, :w]
        yield f"tiled noise {period} px", np.ascontiguousarray(tiled)
        cells = np.kron(rng.choice(np.array([120, 136], np.uint8), (period // 8, period // 8)), np.ones((8, 8), np.uint8))
        yield f"tiled +-8 blocks {period} px", np.ascontiguousarray(np.tile(cells, (h // period + 1, w // period + 1))[:h, :w])
    yield "game frame", next(game_background((WIDTH, HEIGHT)))
    yield "noise", rng.integers(0, 255, (h, w, 3), np.uint8)
    yield "flat grey", np.full((h, w, 3), 128, np.uint8)


def unmarked_inputs(include_shared: bool = True) -> Iterator[tuple[str, list[np.ndarray]]]:
    """(name, frames) of every unmarked 2-second window of the shared clips, every shared still, the
    package images (faces, photographs, textures) and the synthetic pictures."""
    import matplotlib.cbook
    import skimage.data

    from measure.evaluate import read_frames

    for name in ("astronaut", "coffee", "chelsea", "rocket", "camera", "brick", "grass", "gravel", "moon", "text",
                 "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel", "horse", "page", "clock"):
        image = getattr(skimage.data, name)()
        image = image.astype(np.uint8) * 255 if image.dtype == bool else image
        yield f"{name} (skimage)", [np.ascontiguousarray(image[:, :, 2::-1] if image.ndim == 3 else image)]
    for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png"):
        image = cv2.imread(str(matplotlib.cbook.get_sample_data(name, asfileobj=False)))
        if image is not None:
            yield f"{name} (matplotlib)", [image]
    for name, picture in synthetic_pictures():
        yield name, [picture]
    if not include_shared or not SHARED.exists():
        return
    for clip in CLIPS + ("video/grid_s27.mp4",):
        if not (SHARED / clip).exists():
            continue
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
    """Detect on every unmarked input: how many were 'found', and the highest sync z seen (and where)."""
    from tqdm import tqdm

    from measure.watermark_detect import detect_frames

    synthetic = {name for name, _ in synthetic_pictures()}
    trials, alarms, zs, names, top = 0, 0, [], [], []
    for name, frames in tqdm(unmarked_inputs(include_shared), desc="unmarked", disable=not progress):
        det = detect_frames(frames)
        trials += 1
        zs.append(det.z)
        top.append((det.z, name))
        if det.found:
            alarms += 1
            names.append(name)
    top.sort(reverse=True)
    natural = [(z, n) for z, n in top if n not in synthetic]
    return {"trials": trials, "false_alarms": alarms, "alarm_inputs": names,
            "z_max": max(zs) if zs else None, "z_p99": float(np.percentile(zs, 99)) if zs else None,
            "highest": [{"z": z, "input": n} for z, n in top[:5]],
            "highest_natural": [{"z": z, "input": n} for z, n in natural[:5]],
            "z_p99_natural": float(np.percentile([z for z, _ in natural], 99)) if natural else None}


def markdown(result: dict, fa: dict | None) -> str:
    """The robustness table (markdown)."""
    ms, db = result["embed_ms"], result["psnr_db"]
    lines = ["| attack (then decoded) | detected, 2-s windows | wrong payload | false alarms, unmarked windows "
             "| coded-bit errors | message-bit errors (of 72) mean / max | sync z median / min | unmarked z max "
             "| detect ms/frame |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if not r.windows:
            continue
        lines.append(f"| {r.attack} | {r.detected}/{r.windows} ({100 * r.rate:.1f}%) | {r.wrong_payload} "
                     f"| {r.false_alarms}/{r.unmarked_windows} "
                     f"| {100 * statistics.mean(r.coded_bit_errors):.1f}% "
                     f"| {statistics.mean(r.message_bit_errors):.2f} / {max(r.message_bit_errors)} "
                     f"| {statistics.median(r.z):.1f} / {min(r.z):.1f} "
                     f"| {max(r.unmarked_z) if r.unmarked_z else float('nan'):.1f} "
                     f"| {statistics.median(r.detect_ms):.1f} |")
    lines.append("")
    lines.append(f"PSNR of marked frames (watermark only): mean {np.mean(db):.2f} dB, min {np.min(db):.2f} dB. "
                 f"Watermark embedding {np.median(ms):.3f} ms per 1280x720 frame (median of {len(ms)}, p95 "
                 f"{np.percentile(ms, 95):.3f}); label + watermark (the live marker) "
                 f"{np.median(result['marker_ms']):.3f} ms (p95 {np.percentile(result['marker_ms'], 95):.3f}).")
    unmarked = [z for r in result["rows"] for z in r.unmarked_z]
    if unmarked:
        lines.append(f"Attacked unmarked windows: {sum(r.false_alarms for r in result['rows'])} false alarms in "
                     f"{len(unmarked)}; highest sync z {max(unmarked):.2f} (threshold {Z_THRESHOLD}, and the CRC "
                     "must match).")
    if fa is not None:
        lines.append(f"False alarms over every other unmarked input (each 2-s window of each clip in ../shared/data "
                     f"at its own size, every still there, package images and textures, synthetic periodic "
                     f"pictures): {fa['false_alarms']} of {fa['trials']} "
                     f"({100 * fa['false_alarms'] / max(1, fa['trials']):.2f}%); highest sync z {fa['z_max']:.2f} "
                     f"({fa['highest'][0]['input']}), p99 {fa['z_p99']:.2f}; without the synthetic pictures: highest "
                     f"{fa['highest_natural'][0]['z']:.2f} ({fa['highest_natural'][0]['input']}), p99 "
                     f"{fa['z_p99_natural']:.2f} (threshold {Z_THRESHOLD}, and the CRC must match).")
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


def layouts_picture(path: Path, fingerprint: bytes = bytes.fromhex("5ca1ab1e")) -> Path:
    """A PNG to look at (docs/watermark_layouts.png): the marked demo clip (2 s) in four layouts (PiP 25 %
    over a game, PiP 33 % top-left over a photograph, mirrored, turned 5 degrees), each through H.264 CRF 28,
    a middle frame shown at 640x360 under a caption of what the detector read from the 2-s window."""
    from measure.watermark_detect import detect_frames
    from realtime.util.atomic_files import write_image

    frames, fps, _ = load_clip("demo", WINDOW_S)
    marker = OutputMarker(fingerprint)
    marked = [marker(f.copy()) for f in frames]
    cases = (("PiP 25% over a game", lambda fr: picture_in_picture(fr, 0.25, (1, 1), game_background())),
             ("PiP 33% top-left over a photograph", lambda fr: picture_in_picture(fr, 1 / 3, (0, 0),
                                                                                  natural_background())),
             ("mirrored", mirror), ("turned 5 degrees", lambda fr: rotate(fr, 5)))
    panels = []
    for title, attack in cases:
        out = h264_roundtrip(list(attack(marked)), fps)
        det = detect_frames(out)
        read = f"FOUND {det.payload.fingerprint.hex()}" if det.found and det.payload else "not found"
        text = (f"{title} + H.264 CRF 28", f"{read}  z {det.z:.1f}",
                f"scale {100 * det.scale:.0f}%  turn {det.angle:+.1f} deg{'  mirrored' if det.mirrored else ''}"
                f"{f'  folded {100 * det.region:.0f}% of the canvas' if det.region < 0.9 else ''}")
        caption = np.zeros((72, 640, 3), np.uint8)
        for i, line in enumerate(text):
            cv2.putText(caption, line, (8, 20 + 22 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1,
                        cv2.LINE_AA)
        shown = cv2.resize(out[len(out) // 2], (640, 360), interpolation=cv2.INTER_AREA)
        panels.append(np.vstack([caption, shown]))
    return write_image(path, np.vstack([np.hstack(panels[:2]), np.hstack(panels[2:])]))


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
    p.add_argument("--attacks", default=None, help="only the attacks whose name contains one of these "
                                                   "comma-separated words (e.g. 'PiP,rotated')")
    p.add_argument("--amplitude", type=int, default=AMPLITUDE, help="grey levels of the mark (default: the product's)")
    p.add_argument("--no-false-alarms", action="store_true", help="skip the unmarked-input sweep")
    p.add_argument("--marked-only", action="store_true", help="skip the attacks on the unmarked clips too")
    p.add_argument("--false-alarms-only", action="store_true", help="only the unmarked-input sweep")
    p.add_argument("--cost", action="store_true", help="only measure the marking cost per 1280x720 frame, then stop")
    p.add_argument("--layouts", type=Path, default=None, metavar="PNG",
                   help="only write the four-layouts picture (docs/watermark_layouts.png) there, then stop")
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
    if args.layouts:
        print(f"wrote {layouts_picture(args.layouts)}")
        return 0
    clips = args.clips or ([c for c in CLIPS if (SHARED / c).exists()] or ["demo"])
    payload = Payload.now(bytes.fromhex("5ca1ab1e"))
    words = [w.strip().lower() for w in args.attacks.split(",")] if args.attacks else None
    attacks = [a for a in ATTACKS if words is None or any(w in a.name.lower() for w in words)]
    load = os.getloadavg()
    started = time.time()
    args.out.mkdir(parents=True, exist_ok=True)

    def keep(partial: dict) -> None:
        write_text(args.out / "partial.md", markdown(partial, None))

    result = ({"rows": [], "psnr_db": [0.0], "embed_ms": [0.0], "marker_ms": [0.0]} if args.false_alarms_only
              else run_robustness(clips, args.seconds, payload, attacks, amplitude=args.amplitude, after_clip=keep,
                                  unmarked=not args.marked_only))
    fa = None if args.no_false_alarms else run_false_alarms()
    table = markdown(result, fa)
    table += (f"\nClips: {', '.join(clips)} ({args.seconds:g} s each, at {WIDTH}x{HEIGHT}); mark +-{args.amplitude}; "
              f"x264 preset {PRESET}. {(time.time() - started) / 60:.0f} minutes; load average at start: "
              f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, at end: "
              + " ".join(f"{v:.2f}" for v in os.getloadavg()) + ".\n")
    print(table)
    write_text(args.out / "table.md", table)
    if not args.false_alarms_only:
        picture(load_clip(clips[0], 0.1)[0][0], payload, args.out / "watermark.png")
    write_text(args.out / "result.json", json.dumps({
        "rows": [asdict(r) | {"rate": r.rate} for r in result["rows"]],
        "psnr_db_mean": float(np.mean(result["psnr_db"])), "embed_ms_median": float(np.median(result["embed_ms"])),
        "false_alarms": fa, "clips": clips, "seconds": args.seconds, "amplitude": args.amplitude}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
