"""A live session's outputs as one sink: the preview, a virtual camera and a recording switched on and off while
it runs, then the front-end's own sinks (an OpenCV window, still writers).

Commands (``set_vcam``, ``set_record``) may come from any thread; the output thread carries them out between
two frames. A recording is finished (file finalised, C2PA content credentials added) in a thread of its own,
so the loop never waits for it. A virtual camera or recording that fails is switched off and reported; the
loop goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from realtime.pipeline import FrameInfo
from realtime.swap.target_loader import one_line

Say = Callable[[str, str, str], None]  # (level 'info' | 'warning' | 'error', kind, message)


class SessionOutputs:
    """See the module docstring.

    preview(frame, info): hands each frame to the preview first; say: reports what happened; fps(): the
    source's rate (for the virtual camera and files); swapper(): what is shown now (a recording's
    provenance); vcam_options: ``fmt``, ``device``, ``backend`` for ``VirtualCameraSink``; vcam: a virtual
    camera to start with (on); record: a video file to record from the first frame; record_live: a recording
    leaves out the frames its encoder cannot keep up with rather than hold up the loop (False: it waits, every
    frame is recorded; for a file processed as fast as it can be).
    """

    def __init__(self, extra_sinks: list, *, preview: Callable[[np.ndarray, FrameInfo], None], say: Say,
                 fps: Callable[[], float], swapper: Callable[[], object], vcam_options: dict | None = None,
                 vcam=None, record: Path | None = None, record_live: bool = True) -> None:
        self.extra = list(extra_sinks)
        self._preview, self._say, self._fps, self._swapper = preview, say, fps, swapper
        self._vcam_options = dict(vcam_options or {})
        self._lock = threading.Lock()
        self.want_vcam = vcam is not None
        self.vcam = vcam  # VirtualCameraSink (opened on its first frame)
        self.vcam_status = "off"
        self.want_record: Path | None = Path(record) if record is not None else None
        self.recorder = None  # VideoFileSink
        self.record_status = "off"
        self.record_frames = 0
        self._record_live = record_live
        self._shape: tuple | None = None
        self._finishers: list[threading.Thread] = []

    # -- commands (any thread) ----------------------------------------------------------------
    def set_vcam(self, on: bool) -> None:
        with self._lock:
            self.want_vcam = on
            if on and self.vcam_status.startswith(("off", "unavailable")):
                self.vcam_status = "starting"

    def set_record(self, path: Path | None) -> None:
        with self._lock:
            self.want_record = Path(path) if path is not None else None

    # -- the output thread ----------------------------------------------------------------------
    def _reconcile(self, shape: tuple) -> None:
        from realtime.frames.sinks import VideoFileSink, VirtualCameraSink

        with self._lock:
            want_vcam, want_record = self.want_vcam, self.want_record
        if shape != self._shape and self._shape is not None:  # the source changed size
            if self.vcam is not None and self.vcam.camera is not None:
                self.vcam.close()  # reopened at the new size on its next frame
            if self.recorder is not None:
                self._say("warning", "output", "the frame size changed: recording stopped (a video file keeps one "
                                               "size); start it again for the new source")
                self._finish_recording()
                with self._lock:
                    self.want_record = None
                want_record = None
        self._shape = shape
        if want_vcam and self.vcam is None:
            self.vcam = VirtualCameraSink(fps=self._fps(), **self._vcam_options)
        elif not want_vcam and self.vcam is not None:
            self.vcam.close()
            self.vcam = None
            self.vcam_status = "off"
        current = self.recorder.path if self.recorder is not None else None
        if want_record != current:
            if self.recorder is not None:
                self._finish_recording()
            if want_record is not None:
                recorder = VideoFileSink(want_record, fps=self._fps(), live=self._record_live)
                # told when it stops by itself (an error: disk full, folder removed) or left frames out (a warning)
                recorder.on_error = lambda message: self._say("error" if recorder.error else "warning", "output",
                                                              message)
                self.recorder = recorder
                self.record_frames = 0
                self.record_status = f"recording to {want_record}"
                self._say("info", "output", f"recording to {want_record}")

    def _finish_recording(self) -> None:
        """Hand the recorder to a thread that finalises and signs it, so the loop does not wait for either."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return
        self.record_status = f"finishing {recorder.path}"
        thread = threading.Thread(target=self._finish_file, args=(recorder, self._swapper()), name="finish-file",
                                  daemon=False)
        self._finishers.append(thread)
        thread.start()

    def write(self, frame: np.ndarray, info: FrameInfo) -> None:
        self._reconcile(frame.shape)
        self._preview(frame, info)
        if self.vcam is not None:
            try:
                self.vcam.write(frame, info)
                if not self.vcam_status.startswith("on"):
                    self.vcam_status = f"on: {self.vcam.describe()}"
                    self._say("info", "output", f"output: {self.vcam.describe()}")
            except Exception as exc:
                self.vcam, self.vcam_status = None, f"unavailable: {one_line(exc)}"
                with self._lock:
                    self.want_vcam = False
                self._say("error", "output", f"virtual camera: {one_line(exc)}")
        if self.recorder is not None:
            try:
                self.recorder.write(frame, info)
                self.record_frames += 1
                failed = self.recorder.error  # stopped by itself (disk full, folder removed): said by on_error
            except Exception as exc:
                failed = one_line(exc)
                self._say("error", "output", f"recording {self.recorder.path}: {failed}")
            if failed:
                with self._lock:
                    self.want_record = None
                self._finish_recording()
                self.record_status = f"stopped: {failed}"
        for sink in self.extra:
            sink.write(frame, info)

    def close(self) -> None:
        """End of a run: the virtual camera released, the recording finalised (and waited for), the front-end's
        sinks closed."""
        if self.vcam is not None:
            self.vcam.close()
            self.vcam = None
            self.vcam_status = "off" if not self.want_vcam else "stopped (the loop ended)"
        with self._lock:
            self.want_record = None
        self._finish_recording()
        self.join_finishers()
        errors = []
        for sink in self.extra:
            try:
                sink.close()
            except Exception as exc:
                errors.append(f"closing {type(sink).__name__}: {exc}")
        if errors:
            raise RuntimeError("; ".join(errors))

    def join_finishers(self, timeout: float = 120.0) -> None:
        for thread in self._finishers:
            thread.join(timeout)
        self._finishers = [t for t in self._finishers if t.is_alive()]

    # -- finishing a file (its own thread) ------------------------------------------------------------
    def _finish_file(self, recorder, swapper) -> None:
        """Close a recording (file finalised) and add content credentials; reports what it wrote."""
        try:
            recorder.close()
        except Exception as exc:
            self._say("error", "output", f"{recorder.path}: could not finish the file ({one_line(exc)})")
            return
        path = Path(recorder.path)
        if self.record_status == f"finishing {path}":  # not if another recording has started meanwhile
            self.record_status = "off"
        if not path.exists():
            return
        self._say("info", "output", f"wrote {path}")
        if hasattr(recorder, "codec") and not getattr(recorder, "error", None):  # a finished file: credentials
            self._sign(path, swapper)

    def _sign(self, path: Path, swapper) -> None:
        from realtime.marking.content_credentials import CredentialsUnavailable, sign_video
        from realtime.marking.marker import provenance

        try:
            sign_video(path, provenance(swapper))
            self._say("info", "output", f"{path}: C2PA content credentials added (signed with this machine's "
                                        "self-signed certificate)")
        except CredentialsUnavailable as exc:
            self._say("info", "output", f"{path}: no C2PA content credentials: {exc}")
        except Exception as exc:  # the video itself is finished and kept; only the manifest is missing
            self._say("warning", "output", f"{path}: C2PA signing failed ({type(exc).__name__}: {exc})")

    def describe(self) -> dict:
        with self._lock:
            want_vcam, want_record = self.want_vcam, self.want_record
        recording = self.recorder is not None
        return {"virtual_camera": {"on": want_vcam, "status": self.vcam_status},
                "recording": {"on": recording or want_record is not None,
                              "path": str(self.recorder.path if recording else want_record or "") or None,
                              "frames": self.record_frames if recording else 0, "status": self.record_status},
                "sinks": [type(s).__name__ for s in self.extra]}
