"""Video files that survive a crash: H.264 by the ffmpeg binary through a pipe, in a hybrid MP4.

``VideoFileSink(path, fps=30)`` is the sink that records (``open(w, h)`` / ``write(frame, info)`` /
``close()``, like every sink). What it promises:

- **A crash loses at most ~1 second.** The file is written where the user asked (no temporary name)
  as a *hybrid* MP4 (FFmpeg's ``movflags=hybrid_fragmented``, the container OBS calls "Hybrid MP4"):
  while recording it is a fragmented MP4, a fragment every ``FRAGMENT_S`` seconds, each playable
  once written; on a normal stop FFmpeg turns it into an ordinary MP4 in place (the fragments hidden
  inside one ``mdat``, a normal ``moov`` at the end), which every player opens and C2PA can sign.
  ``.mkv`` is Matroska with a cluster every ``FRAGMENT_S``. After ``kill -9`` (of this process and
  FFmpeg together, as a power cut does) the file holds every frame but those still in the queue, in
  the encoder (``rc-lookahead`` + B-frames + frame threads, bounded: ``X264_PARAMS``) and in the
  fragment being filled: 12-17 frames (0.40-0.57 s) in five kills at 30 fps (a kill in the first
  half second leaves an empty file). The file is also ``fsync``-ed every ``SYNC_S`` seconds, so an
  operating system crash loses little more.
- **It never blocks the live loop.** ``write`` copies the frame into a bounded queue (``QUEUE_S``,
  ``QUEUE_BYTES``) and returns; a writer thread feeds FFmpeg. When the encoder cannot keep up, frames
  are dropped from the recording (counted in ``dropped`` and said on close), never from the live output.
- **A full disk or a vanished folder ends the recording, not the session**: one clear message
  (``on_error``, stderr by default; ``error`` keeps it), the live output runs on, and what was written
  stays playable: a torn last fragment is cut off (``trim_torn_tail``); a file whose folder was
  removed is copied, from the descriptor still held, to the nearest folder that still exists.

Quality: libx264 ``preset`` veryfast (OBS's default) at CRF ``DEFAULT_CRF``, yuv420p, BT.709 tagged;
``python -m measure.recording_bench`` measures its PSNR, bitrate and CPU cost, and kills a real
recording process to count the frames that survive.
"""

from __future__ import annotations

import os
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

FRAGMENT_S = 0.25  # seconds of video per fragment (MP4) or cluster (Matroska): what a kill may lose, at most
SYNC_S = 1.0  # fsync period: what an operating system crash or power cut may lose beyond that
QUEUE_S = 0.5  # at most this much video waits for the encoder (live): more is dropped, and a kill loses it
QUEUE_BYTES = 96 << 20  # and at most this much memory (1080p30: 0.5 s is 93 MB)
DEFAULT_CRF = 21
DEFAULT_PRESET = "veryfast"
# veryfast's own lookahead is 10 frames and 3 B-frames; these bound the frames held inside x264 to
# about 6 (rc-lookahead 5 + 2 frame threads) at ~5% more bitrate (measure.recording_bench), and without
# B-frames a crash leaves no frame missing before the last one in the file.
X264_PARAMS = "rc-lookahead=5:bframes=0:threads=2"
ENCODERS = {"h264": "libx264", "avc1": "libx264", "libx264": "libx264", "mp4v": "mpeg4", "mpeg4": "mpeg4"}
MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


class RecordingError(RuntimeError):
    """A recording that cannot start (no ffmpeg, unsupported file type, a folder that cannot be made)."""


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The ffmpeg binary: the one the imageio-ffmpeg wheel ships (it has libx264), or $IMAGEIO_FFMPEG_EXE."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise RecordingError(f"no ffmpeg binary to record with ({exc}); install imageio-ffmpeg "
                             "(pip install imageio-ffmpeg) or set IMAGEIO_FFMPEG_EXE") from exc


@lru_cache(maxsize=4)
def ffmpeg_has_encoder(name: str) -> bool:
    """Whether the ffmpeg binary lists the encoder ``name`` (e.g. a system ffmpeg built without libx264)."""
    try:
        out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired, RecordingError):
        return False
    return any(line.split()[1:2] == [name] for line in out.stdout.splitlines() if line.startswith(" V"))


def _box_header(head: bytes) -> tuple[int, bytes, int] | None:
    """(size, type, header length) of the ISO-BMFF box whose header starts ``head``."""
    if len(head) < 8:
        return None
    size, kind = struct.unpack(">I4s", head[:8])
    if size == 1:
        if len(head) < 16:
            return None
        return struct.unpack(">Q", head[8:16])[0], kind, 16
    return size, kind, 8


def trim_torn_tail(fd: int) -> int | None:
    """Cut an interrupted fragmented MP4 (open ``fd``, read-write) after its last complete fragment.

    Walks the top-level boxes; a box that runs past the end of the file, or a ``moof`` not followed
    by its ``mdat``, is a torn write. Returns the new size, or None when nothing was cut (a complete
    file, or not an MP4). Only the tail is touched: the frames before it are unchanged.
    """
    size = os.fstat(fd).st_size
    offset, good_end, pending_moof = 0, 0, False
    while offset + 8 <= size:
        header = _box_header(os.pread(fd, 16, offset))
        if header is None:
            break
        box_size, kind, _ = header
        if box_size == 0:  # "to the end of the file": an mdat being written
            box_size = size - offset
        if box_size < 8 or offset + box_size > size:
            break
        offset += box_size
        if kind == b"moof":
            pending_moof = True
        else:
            pending_moof = False if kind == b"mdat" else pending_moof
            if not pending_moof:
                good_end = offset
    if offset == 0 or good_end >= size:
        return None
    os.ftruncate(fd, good_end)
    return good_end


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def _rescue_folder(path: Path) -> Path:
    """The nearest ancestor of ``path``'s folder that still exists (where a rescued file goes)."""
    folder = path.parent
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    return folder


def _say_to_stderr(message: str) -> None:
    print(f"swapcam: {message}", file=sys.stderr, flush=True)


class VideoFileSink:
    """Records BGR frames to ``path`` (.mp4/.m4v/.mov: hybrid MP4; .mkv: Matroska) with libx264.

    ``fps``: the file's constant frame rate. ``codec``: 'h264' (default), or 'mp4v' for MPEG-4 Part 2.
    ``crf`` / ``preset`` / ``x264_params``: x264's quality, speed and delay. ``live``: frames come in
    real time, so when the encoder falls behind the recording drops frames rather than hold up the
    loop; ``live=False`` (a file processed as fast as it can be) waits for the encoder instead, and
    every frame is recorded.
    ``on_error(message)`` is told once when the recording stops by itself (disk full, folder gone,
    encoder died) and when frames were dropped; default: a line on stderr. Frames of another size than
    the first are resized to it. Attributes: ``frames`` (handed over), ``written`` (fed to the
    encoder), ``dropped``, ``error`` (None while all is well).
    """

    def __init__(self, path: str | Path, *, fps: float = 30.0, codec: str | None = None, crf: int = DEFAULT_CRF,
                 preset: str = DEFAULT_PRESET, x264_params: str = X264_PARAMS, live: bool = True,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        if self.path.suffix.lower() not in MUXERS:
            raise RecordingError(f"{self.path.name}: recordings are .mp4, .m4v, .mov or .mkv files "
                                 f"(not '{self.path.suffix or 'no suffix'}')")
        name = (codec or "h264").lower()
        if name not in ENCODERS:
            raise RecordingError(f"unknown codec {codec!r}; choose one of {', '.join(sorted(ENCODERS))}")
        self.encoder = ENCODERS[name]
        self.codec = "H.264 (libx264)" if self.encoder == "libx264" else "MPEG-4 Part 2"
        self.crf, self.preset, self.x264_params, self.live = int(crf), preset, x264_params, live
        self.on_error = on_error or _say_to_stderr
        self.frames = self.written = self.dropped = 0
        self.error: str | None = None
        self.size: tuple[int, int] | None = None
        self._muxer = MUXERS[self.path.suffix.lower()]
        self._proc: subprocess.Popen | None = None
        self._fd: int | None = None
        self._queue: queue.Queue | None = None
        self._writer: threading.Thread | None = None
        self._keeper: threading.Thread | None = None
        self._done = threading.Event()
        self._lost = threading.Event()  # the file (or its folder) vanished
        self._log: deque[str] = deque(maxlen=20)
        self._closed = False

    # -- start ------------------------------------------------------------------------------------
    def command(self, width: int, height: int) -> list[str]:
        """The ffmpeg command line: raw BGR frames on stdin, the file on our descriptor (POSIX) or path."""
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
               "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}", "-r", f"{self.fps:g}", "-i", "pipe:0",
               "-vf", "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p",
               "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
               "-c:v", self.encoder]
        if self.encoder == "libx264":
            cmd += ["-preset", self.preset, "-crf", str(self.crf)]
            cmd += ["-x264-params", self.x264_params] if self.x264_params else []
        else:
            cmd += ["-q:v", "3"]
        if self._muxer == "matroska":
            cmd += ["-cluster_time_limit", str(int(FRAGMENT_S * 1000))]
        else:
            cmd += ["-movflags", "+hybrid_fragmented", "-frag_duration", str(int(FRAGMENT_S * 1e6))]
        cmd += ["-flush_packets", "1", "-f", self._muxer]
        # POSIX: FFmpeg writes (and seeks) the descriptor we opened, which we keep to fsync the file and to
        # save it if its folder is removed; elsewhere it opens the path itself.
        return cmd + (["-fd", str(self._fd), "fd:"] if self._fd is not None else ["-y", str(self.path)])

    def open(self, width: int, height: int) -> None:
        """Create the file and start the encoder (in the writer thread) for ``width`` x ``height`` frames."""
        if self._writer is not None:
            return
        width, height = max(2, width // 2 * 2), max(2, height // 2 * 2)  # yuv420p needs even sizes
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if os.name == "posix":
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise RecordingError(f"cannot create {self.path}: {exc.strerror or exc}") from exc
        self.size = (width, height)
        self._queue = queue.Queue(maxsize=max(4, min(int(QUEUE_S * self.fps), QUEUE_BYTES // (width * height * 3))))
        self._writer = threading.Thread(target=self._write_loop, name="recorder", daemon=True)
        self._keeper = threading.Thread(target=self._keep_loop, name="recorder-sync", daemon=True)
        self._writer.start()
        self._keeper.start()

    def describe(self) -> str:
        what = f"video file {self.path} ({self.codec}"
        if self.encoder == "libx264":
            what += f", CRF {self.crf}, preset {self.preset}"
        return what + f"; crash-safe: a fragment every {FRAGMENT_S:g} s)"

    # -- the live side ----------------------------------------------------------------------------
    def write(self, frame: np.ndarray, info=None) -> None:
        """Queue a BGR uint8 frame (copied). Live: never waits (a frame that does not fit is dropped)."""
        if self._writer is None:
            if self._closed:
                return
            self.open(frame.shape[1], frame.shape[0])
        if self.error is not None:
            return
        self.frames += 1
        w, h = self.size
        if frame.shape[1] != w or frame.shape[0] != h:
            frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        data = np.ascontiguousarray(frame).tobytes()
        if self.live:
            try:
                self._queue.put_nowait(data)
            except queue.Full:
                self.dropped += 1
            return
        while self.error is None:
            try:
                self._queue.put(data, timeout=0.2)
                return
            except queue.Full:
                continue

    # -- the writer side --------------------------------------------------------------------------
    def _read_log(self) -> None:
        for line in iter(self._proc.stderr.readline, b""):
            text = line.decode("utf-8", "replace").strip()
            if text:
                self._log.append(text)

    def _write_loop(self) -> None:
        try:
            self._feed_encoder()
        except Exception as exc:  # a bug must not leave write() waiting on a queue nobody empties
            self._fail(f"the recorder failed ({type(exc).__name__}: {exc})")

    def _feed_encoder(self) -> None:
        if self.encoder == "libx264" and not ffmpeg_has_encoder("libx264"):
            self.encoder, self.codec = "mpeg4", "MPEG-4 Part 2 (this ffmpeg has no libx264)"
        try:  # started here, not in write(): finding and starting ffmpeg takes tens of ms
            self._proc = subprocess.Popen(self.command(*self.size), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, pass_fds=(self._fd,) if self._fd is not None else ())
        except (OSError, RecordingError) as exc:
            self._fail(f"ffmpeg could not start ({getattr(exc, 'strerror', None) or exc})")
            return
        threading.Thread(target=self._read_log, name="recorder-log", daemon=True).start()
        while not self._lost.is_set():
            try:
                data = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._proc.poll() is not None:
                    self._fail(self._encoder_reason())
                    return
                continue
            if data is None:
                return
            try:
                self._proc.stdin.write(data)
                self.written += 1
            except OSError as exc:  # the encoder has gone (disk full, killed): BrokenPipeError
                self._fail(self._encoder_reason(exc))
                return
        self._fail(f"the file or its folder ({self.path.parent}) was removed while recording")

    def _keep_loop(self) -> None:
        """Every SYNC_S: fsync what is written; notice when the file (or its folder) is gone."""
        if self._fd is None:
            return
        while not self._done.wait(SYNC_S):
            try:
                os.fsync(self._fd)
            except OSError:
                pass
            if self._file_gone():
                self._lost.set()
                return

    def _file_gone(self) -> bool:
        """True when ``path`` no longer names the file we are writing (removed, or its folder was)."""
        if self._fd is None:
            return False
        try:
            return os.stat(self.path).st_ino != os.fstat(self._fd).st_ino
        except FileNotFoundError:
            return True
        except OSError:
            return False

    def _encoder_reason(self, exc: BaseException | None = None) -> str:
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.05)  # let the log reader take ffmpeg's last line
        said = "; ".join(list(self._log)[-2:])
        why = said or (exc.strerror if isinstance(exc, OSError) and exc.strerror else "") or "no message"
        code = self._proc.poll()
        detail = f"ffmpeg {_describe_exit(code)}: {why}"
        if "No space left" in said:
            return f"the disk is full ({detail})"
        if "File too large" in said or code == -getattr(signal, "SIGXFSZ", -1000):
            return f"the file reached this system's size limit ({detail})"
        return f"the encoder stopped ({detail})"

    def _fail(self, reason: str) -> None:
        """Stop recording (the live output goes on), keep what was written playable, say so once."""
        if self.error is not None:
            return
        self.error = reason
        self._finish_encoder(timeout=10)
        self.on_error(f"recording stopped: {reason}. {self._salvage()}")

    # -- finishing --------------------------------------------------------------------------------
    def _finish_encoder(self, timeout: float) -> None:
        """Close FFmpeg's input and wait for it to write the file's end (killed after ``timeout`` s)."""
        proc = self._proc
        if proc is None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _salvage(self) -> str:
        """After a failure: cut a torn tail, or copy a file whose folder vanished. Returns what the user has."""
        seconds = self.written / self.fps
        if self._fd is None:
            return f"What was written ({self.written} frames, {seconds:.1f} s) is in {self.path}."
        if self._lost.is_set():
            target = _rescue_folder(self.path) / f"{self.path.stem}.rescued{self.path.suffix}"
            try:
                fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    offset = 0
                    while block := os.pread(self._fd, 1 << 20, offset):
                        os.write(fd, block)
                        offset += len(block)
                    if self._muxer != "matroska":
                        trim_torn_tail(fd)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                return f"The {self.written} frames written could not be saved ({exc.strerror or exc})."
            return f"The {self.written} frames written ({seconds:.1f} s) were saved to {target}."
        if self._muxer != "matroska":
            try:
                trim_torn_tail(self._fd)
            except OSError:
                pass
        return f"What was written ({self.written} frames, {seconds:.1f} s) is in {self.path} and plays."

    def close(self) -> None:
        """Finish the file: the frames queued are encoded and FFmpeg finalises it (an ordinary MP4)."""
        self._closed = True
        if self._writer is None:
            return
        while self._writer.is_alive():  # the end marker goes after every queued frame
            try:
                self._queue.put(None, timeout=0.2)
                break
            except queue.Full:
                continue
        self._writer.join()
        if self.error is None:
            self._finish_encoder(timeout=60)
            if self._file_gone():
                self._lost.set()
                self._fail(f"the file or its folder ({self.path.parent}) was removed while recording")
            elif self._proc.returncode != 0:
                self._fail(self._encoder_reason())
        self._done.set()
        self._keeper.join()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._writer = None
        if self.dropped:
            self.on_error(f"{self.path}: {self.dropped} of {self.frames} frames were left out of the recording: "
                          "the encoder could not keep up on this CPU")
