"""`swapcam live` (and `python run_live.py`): camera/video -> face swap -> virtual camera/window/file.

With no arguments it chooses for itself and says what it chose, why, and how to change it:
the one-photo swap of the shipped photo models/photos/london_063.jpg (with models/demo.onnx one key
press away); source the first webcam that opens, else the built-in demo; output the virtual camera if
one exists, else a window if there is a screen, else ./swapcam_output.mp4.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

DEFAULT_MODEL = Path("models/demo.onnx")
# The default swap is the one-photo swap of a consenting sitter while it beats the shipped trained model
# on `swapcam eval` (both showing GRID s1 on the unseen speaker s26); the trained model stays loaded (n key).
DEFAULT_PHOTO = Path("models/photos/london_063.jpg")
DEFAULT_WHY = ("the one-photo swap (no training) is the default because it beats the shipped trained model "
               "on `swapcam eval` (unseen GRID speaker s26, both showing GRID s1: dlib distance 0.46 vs 0.65, "
               "pose error 0.6 vs 3.1 deg; README 'Swap from one photo')")
DEFAULT_OUTPUT = Path("swapcam_output.mp4")
SINKS = ("auto", "vcam", "window", "file", "null")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """All options of `swapcam live`."""
    from realtime.merging.color_transfer import MODES
    from realtime.merging.merge import MASK_MODES, MergeSettings
    from realtime.frames.sinks import VCAM_FORMATS

    d = MergeSettings()
    g = parser.add_argument_group("model")
    g.add_argument("--model", action="append", type=Path, metavar="PATH",
                   help="ONNX/DFM face-swap model, or a photo / folder of photos / short video of the target for the "
                        "one-photo swap (no training); repeat to switch with n/p in the window "
                        f"(default: {DEFAULT_PHOTO}, then {DEFAULT_MODEL})%(default).0s")
    g.add_argument("--face-type", default=None,
                   help="override the model's face type (bare .dfm files: whole_face; DeepFaceLab SAEHD models "
                        "trained as full face: full)")
    g.add_argument("--crop-scale", type=float, default=None,
                   help="aligned crop side over DeepFaceLab's crop of the face type, for models trained on other "
                        "tools' crops (default: the model's metadata, else 1; e.g. 0.9 for DeepFaceLive's face "
                        "coverage 2.2)")
    g.add_argument("--providers", "--provider", default=None,
                   help="comma-separated ONNX Runtime providers to use instead of the best available ones, or "
                        "'torch' to run the model with torch (CUDA where present: no onnxruntime-gpu needed)")
    g.add_argument("--morph", type=float, default=0.75, help="morph_value fed to DeepFaceLab AMP models")
    g.add_argument("--photo-resolution", type=int, default=None,
                   help="one-photo swap: side of the aligned face in pixels (default: the photo's own resolution, "
                        "224 to 256; face type full)")
    g.add_argument("--forehead", type=float, default=None,
                   help="one-photo swap: how far up the forehead the swap reaches, 0 = brows, 1 = hairline (default 0.5)")
    g.add_argument("--proportions", type=float, default=None,
                   help="one-photo swap: eyes, brows and nose placed with the user's (0) or the photo's (1) "
                        "proportions (default 0); the outline and the lips stay the user's")

    g = parser.add_argument_group("source")
    g.add_argument("--source", default="auto",
                   help="'auto' (first webcam, else demo), 'demo', a camera index or /dev/videoN, a video file, an image folder")
    g.add_argument("--width", type=int, default=640, help="camera width to request")
    g.add_argument("--height", type=int, default=480, help="camera height to request")
    g.add_argument("--fps", type=float, default=30.0, help="camera fps to request; pace of the demo source and image folders")
    g.add_argument("--no-mjpg", action="store_true", help="do not ask the camera for MJPG")
    g.add_argument("--unpaced", action="store_true",
                   help="read video files/folders as fast as possible, every frame processed (not like a camera)")
    g.add_argument("--loop", action="store_true", help="loop video files, image folders and the demo source")
    g.add_argument("--reconnect", action="store_true", help="reopen a camera that stops delivering instead of ending")
    g.add_argument("--demo-seconds", type=float, default=10.0, help="length of the built-in demo source (without --loop)")

    g = parser.add_argument_group("output")
    g.add_argument("--sink", action="append", choices=SINKS, metavar="{" + ",".join(SINKS) + "}",
                   help="where frames go; repeat for several (default: auto = virtual camera, else window, else file)"
                        "%(default).0s")
    g.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="video file for --sink file")
    g.add_argument("--vcam-format", choices=VCAM_FORMATS, default="RGB", help="pixel format sent to the virtual camera")
    g.add_argument("--vcam-device", default=None, help="virtual camera device (e.g. /dev/video10, 'OBS Virtual Camera')")
    g.add_argument("--vcam-backend", default=None, help="pyvirtualcam backend (v4l2loopback, obs, unitycapture)")
    g.add_argument("--no-window-fallback", action="store_true",
                   help="with --sink vcam: fail instead of opening a window when no virtual camera exists")
    g.add_argument("--no-hud", action="store_true", help="start the window without the HUD (toggle with h)")
    g.add_argument("--no-label", action="store_true",
                   help="leave out the small 'AI-altered video' corner label. It is on by default so that people who "
                        "see the output know it is synthetic; the invisible watermark stays either way (swapcam verify)")
    g.add_argument("--side-by-side", type=Path, default=None, metavar="PNG",
                   help="also write one still, input | swapped, to this PNG")
    g.add_argument("--side-by-side-frame", type=int, default=30, help="frame number of that still")
    g.add_argument("--stats-json", type=Path, default=None, help="write the run's figures (fps, latency, stage ms) here")

    g = parser.add_argument_group("faces and smoothing")
    g.add_argument("--max-faces", type=int, default=1, help="faces to swap per frame")
    g.add_argument("--largest-only", action="store_true", help="swap only the largest face")
    g.add_argument("--landmark-max-side", type=int, default=1920, help="downscale frames above this side for landmarks")
    g.add_argument("--no-smoothing", action="store_true", help="turn off landmark smoothing (One Euro filter)")
    g.add_argument("--min-cutoff", type=float, default=1.0, help="One Euro min cutoff, Hz (lower = steadier when still)")
    g.add_argument("--beta", type=float, default=20.0, help="One Euro beta per face size/s (higher = less lag when moving)")
    g.add_argument("--mask-smoothing", type=float, default=0.5, help="mask EMA rate in (0, 1]; 1 = off")
    g.add_argument("--color-smoothing", type=float, default=0.2, help="colour-statistics EMA rate in (0, 1]; 1 = off")
    g.add_argument("--hold", type=int, default=3, help="frames a lost face is held")
    g.add_argument("--fade", type=int, default=6, help="frames a lost face then fades out over")

    g = parser.add_argument_group("occlusion (hands, glasses, microphones, cups in front of the face stay on top)")
    g.add_argument("--occlusion", choices=("on", "off"), default=None,
                   help="find what is in front of each face with the occlusion model and keep it over the swap "
                        "(default on; o toggles it in the window)%(default).0s")
    g.add_argument("--occlusion-model", type=Path, default=None,
                   help="occlusion model (default: the shipped models/occlusion.onnx)%(default).0s")

    g = parser.add_argument_group("merge")
    g.add_argument("--mask", choices=MASK_MODES, default=d.mask, help="model masks to use")
    g.add_argument("--hull", action="store_true", help="also limit the mask to the landmark hull")
    g.add_argument("--mask-threshold", type=float, default=d.threshold,
                   help="the face is opaque where the model's mask reaches this, the frame elsewhere; only the "
                        "feathered border blends (0 = use the soft mask as it is, which can show two faces at once)")
    g.add_argument("--erode", type=int, default=d.erode, help="shrink (>0) or grow (<0) the mask, aligned-face pixels")
    g.add_argument("--blur", type=int, default=d.blur, help="feather the mask edge, aligned-face pixels")
    g.add_argument("--color", choices=MODES, default=d.color, help="colour transfer onto the swapped face")
    g.add_argument("--opacity", type=float, default=d.opacity, help="0..1 strength of the swap")
    g.add_argument("--sharpen", type=float, default=d.sharpen, help="unsharp-mask amount on the swapped face (0 = off)")
    g.add_argument("--eyes", dest="user_eyes", type=_user_eyes, metavar="{user,model}", default=None,
                   help="user (default): the user's own eyes between the swapped lids, so blinks and gaze follow the "
                        "user (for trained models too); model: the swap's own eyes (key e switches)")

    g = parser.add_argument_group("control API (README: 'Control API')")
    g.add_argument("--api", default=None, metavar="[HOST:]PORT",
                   help="serve the local HTTP control API (state, settings, target, outputs) on this port; the host is "
                        "127.0.0.1 unless given (any other host prints a warning)")
    g.add_argument("--api-token", default=None, metavar="TOKEN",
                   help="the token every API request must send (Authorization: Bearer TOKEN); default: a random one "
                        "made once and kept in the config folder (~/.config/swapcam/api_token), printed at start")

    g = parser.add_argument_group("run")
    g.add_argument("--max-frames", type=int, default=None, help="stop after this many output frames")
    g.add_argument("--pipelining", choices=("auto", "split", "serial"), default="auto",
                   help="split: landmarks of the next frame overlap the swap of this one (two threads: more fps "
                        "when cores are free); serial: one thread (lower latency on a busy CPU); "
                        "auto: split with 4+ CPU cores, else adaptive (one thread's order while that keeps up "
                        "with the camera, overlapped while it does not, e.g. 1080p60 on 2 cores)")
    g.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0 = its default)")


def _user_eyes(value: str) -> bool:
    """--eyes user|model -> the live setting ``user_eyes``."""
    if value not in ("user", "model"):
        raise argparse.ArgumentTypeError(f"choose user or model, not {value!r}")
    return value == "user"


def _say(text: str) -> None:
    print(f"swapcam live: {text}", flush=True)


def _fail(text: str, code: int = 2) -> int:
    print(f"swapcam live: error: {text}", file=sys.stderr, flush=True)
    return code


def _shipped(path: Path) -> Path:
    """A shipped file, found from the working folder or else from the repository."""
    return path if path.exists() else Path(__file__).resolve().parents[1] / path


def _default_models() -> list[Path]:
    """The shipped photo (the default swap) and the shipped demo model, those that exist; says which and why."""
    photo, model = _shipped(DEFAULT_PHOTO), _shipped(DEFAULT_MODEL)
    if photo.is_file():
        switch = f"; n switches to {DEFAULT_MODEL}" if model.is_file() else ""
        _say(f"model: {DEFAULT_PHOTO} — {DEFAULT_WHY}{switch}; change with --model PATH (a model, or a photo / "
             "folder / video of your target)")
        return [photo, model] if model.is_file() else [photo]
    if not model.is_file():
        raise FileNotFoundError(
            f"the demo model {DEFAULT_MODEL} is missing. It ships with the repository (git pull / a fresh "
            "clone brings it); or make your own with `swapcam extract`, `swapcam train`, `swapcam export`, "
            "or use any DeepFaceLab .dfm / DFM-compatible .onnx, or a photo of the target, with --model PATH")
    _say(f"model: {DEFAULT_MODEL} (the shipped demo model; change with --model PATH)")
    return [model]


def session_options(args):
    """The live session's fixed options from a `swapcam live` command line."""
    from realtime.session import SessionOptions

    providers = tuple(p.strip() for p in args.providers.split(",")) if args.providers else None
    split = {"split": True, "serial": False}.get(args.pipelining)
    return SessionOptions(
        max_faces=args.max_faces, largest_only=args.largest_only, landmark_max_side=args.landmark_max_side,
        min_cutoff=args.min_cutoff, beta=args.beta, mask_smoothing=args.mask_smoothing,
        color_smoothing=args.color_smoothing, hold=args.hold, fade=args.fade, split=split, face_type=args.face_type,
        crop_scale=args.crop_scale, providers=providers, morph_value=args.morph, threads=args.threads,
        photo_resolution=args.photo_resolution, proportions=args.proportions, vcam_format=args.vcam_format,
        vcam_device=args.vcam_device, vcam_backend=args.vcam_backend,
        record_every_frame=args.unpaced)


def load_targets(args, options, forehead: float) -> list:
    """Every --model (or the defaults), opened and warmed up, each described as it loads."""
    from realtime.swap.target_loader import open_target

    targets = []
    for path in args.model or _default_models():
        target = open_target(path, options, forehead)
        _say(target.swapper.describe() + f"; warm-up {target.swapper.warmup_ms:.0f} ms")
        targets.append(target)
    return targets


def load_occlusion(args, on: bool):
    """The occlusion stage (opened even when ``on`` is False, so that the key o or the app can turn it on);
    says which model it runs. OcclusionModelError when it is asked for and cannot be opened; when it is off,
    a model that cannot be opened only leaves the switch without effect."""
    from realtime.merging.occlusion import OcclusionModelError, open_occlusion

    try:
        masker = open_occlusion(args.occlusion_model)
    except OcclusionModelError as exc:
        if on:
            raise
        _say(f"occlusion: off, and unavailable ({exc})")
        return None
    if on:
        _say(f"occlusion: on, {masker.describe()} (--occlusion off, or o in the window, turns it off)")
    else:
        _say("occlusion: off (hands, glasses and objects in front of the face are painted over; o in the window "
             "or --occlusion on turns it on)")
    return masker


def _announce_provenance(swappers: list) -> None:
    """Print who each model shows and the consent it records; warn, naming it, where one is missing."""
    from realtime.marking.marker import provenance

    for swapper in swappers:
        record = provenance(swapper)
        _say(record.describe())
        missing = record.missing()
        if missing:
            print(f"swapcam live: warning: {record.path.name if record.path else 'this model'} records no "
                  f"{' and no '.join(missing)} (a DeepFaceLab .dfm or a photo carries none): show a person's face "
                  "only with their consent", file=sys.stderr, flush=True)


def _open_source(args):
    from realtime.frames.sources import first_webcam, open_source

    common = dict(width=args.width, height=args.height, fps=args.fps, mjpg=not args.no_mjpg)
    if args.source == "auto":
        cam = first_webcam(**common, reconnect=args.reconnect)
        if cam is not None:
            _say(f"source: {cam.describe()} (the first webcam that opened; change with --source INDEX|FILE|FOLDER|demo)")
            return cam
        from realtime.frames.demo_source import DemoSource

        src = DemoSource(fps=args.fps, seconds=args.demo_seconds, loop=args.loop, realtime=not args.unpaced)
        _say(f"source: {src.describe()} — no webcam opened on this machine "
             "(change with --source INDEX|FILE|FOLDER; --loop keeps the demo running)")
        return src
    src = open_source(args.source, **common, realtime=not args.unpaced, loop=args.loop, reconnect=args.reconnect,
                      demo_seconds=args.demo_seconds)
    _say(f"source: {src.describe()}")
    return src


def _make_outputs(args, fps: float, actions: dict, keys: dict) -> tuple[list, object, Path | None]:
    """What --sink asks for: (the front-end's own sinks, a virtual camera to start with or None, a video file to
    record to or None). The virtual camera and the recording are the session's outputs; windows and stills
    are sinks of this command line."""
    from realtime.frames.sinks import (
        NullSink,
        SideBySideSink,
        VirtualCameraSink,
        display_available,
        virtual_camera_available,
    )

    def window():
        from realtime.frames.sinks import WindowSink

        return WindowSink(actions=actions, keys=keys, hud=not args.no_hud)

    def virtual_camera() -> tuple[VirtualCameraSink | None, str]:
        ok, why = virtual_camera_available(args.vcam_format, args.width, args.height)
        sink = VirtualCameraSink(fps=fps, fmt=args.vcam_format, device=args.vcam_device, backend=args.vcam_backend)
        return (sink if ok else None), why

    requested = args.sink or ["auto"]
    sinks, vcam, record = [], None, None
    for kind in requested:
        if kind == "auto":
            found, why = virtual_camera()
            if found:
                vcam = found
                _say(f"output: {why} (a virtual camera was found; Zoom/Meet/OBS can pick it)")
            elif display_available():
                sinks.append(window())
                _say(f"output: preview window — {why}")
            else:
                record = args.output
                _say(f"output: video file {args.output} — no virtual camera and no display ($DISPLAY / "
                     f"$WAYLAND_DISPLAY unset). Why no virtual camera: {why}")
            _say("change the output with --sink vcam|window|file|null (repeatable) and --output PATH")
        elif kind == "vcam":
            found, why = virtual_camera()
            if found:
                vcam = found
                _say(f"output: {why}")
            elif not args.no_window_fallback and display_available():
                _say(f"{why}\nswapcam live: falling back to a preview window (--no-window-fallback to fail instead)")
                sinks.append(window())
            else:
                raise RuntimeError(why)
        elif kind == "window":
            if not display_available():
                raise RuntimeError("--sink window needs a display ($DISPLAY or $WAYLAND_DISPLAY); use --sink file")
            sinks.append(window())
            _say("output: preview window")
        elif kind == "file":
            record = args.output
            _say(f"output: video file {args.output}")
        elif kind == "null":
            sinks.append(NullSink())
    if args.side_by_side:
        sinks.append(SideBySideSink(args.side_by_side, at_frame=args.side_by_side_frame))
    return sinks, vcam, record


def _log_event(event) -> None:
    """A session event on the terminal: problems on stderr, outputs and targets on stdout (settings changes
    show in the window's status line instead)."""
    if event.level in ("warning", "error"):
        print(f"swapcam live: {event.level}: {event.message}", file=sys.stderr, flush=True)
    elif event.kind != "settings":
        _say(event.message)


def gallery_folders(user_folder: Path | None = None) -> list[tuple[Path, bool]]:
    """Where targets are found, as ``realtime.swap.targets.scan_targets`` takes them: the shipped models, the
    shipped photos, the user's own folder (``--targets``, else ``swapcam.config.targets_dir()``)."""
    from swapcam.config import targets_dir

    models = _shipped(Path("models"))
    return [(models, False), (models / "photos", True), (user_folder or targets_dir(), True)]


def gallery_for(session) -> list[dict]:
    """The targets an API client can pick from: the start-up list, the shipped models and photos, the user's folder."""
    from realtime.swap.targets import scan_targets

    return [entry.as_dict() for entry in scan_targets(gallery_folders(), extra=list(session.playlist))]


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _stop_on_signals() -> None:
    """Make Ctrl-C and SIGTERM (service managers, `kill`) end the loop cleanly, file finalised.

    Installed explicitly for both: a process started in the background by a non-interactive shell
    inherits SIGINT as *ignored*, and Python then never turns it into KeyboardInterrupt, so a
    `kill -INT` would be lost.
    """
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _raise_interrupt)


def main(args: argparse.Namespace) -> int:
    """Run the live loop; returns 0 on a clean end, 2 on bad input."""
    from realtime import live_settings
    from realtime.frames.sources import SourceError
    from realtime.session import LiveSession
    from realtime.swap.model_contract import ModelContractError
    from realtime.util.atomic_files import write_text
    from swapcam.control_api import ApiAddressError, parse_address, start_api

    try:
        settings = live_settings.from_args(args)
        if args.api:
            parse_address(args.api)
        options = session_options(args)
        targets = load_targets(args, options, float(settings["forehead"]))
        occlusion = load_occlusion(args, bool(settings["occlusion"]))
    except (FileNotFoundError, ModelContractError, ValueError) as exc:
        return _fail(str(exc))
    _announce_provenance([t.swapper for t in targets])
    try:
        source = _open_source(args)
    except SourceError as exc:
        return _fail(str(exc))
    session = None
    actions = {"quit": lambda: session.stop(), "next_model": lambda: session.step_target(+1),
               "prev_model": lambda: session.step_target(-1)}
    actions.update({name: (lambda n=name: session.toggle(n)) for name in live_settings.HOTKEYS.values()})
    try:
        sinks, vcam, record = _make_outputs(args, float(getattr(source, "fps", args.fps) or args.fps), actions,
                                            live_settings.HOTKEYS)
    except (RuntimeError, ValueError) as exc:
        source.close()
        return _fail(str(exc))
    session = LiveSession(source, targets, options=options, settings=settings, sinks=sinks, vcam=vcam, record=record,
                          log=_log_event, occlusion=occlusion)
    _say("every output frame carries an invisible watermark naming the model (check with `swapcam verify FILE`)"
         + ("" if args.no_label else " and a visible 'AI-altered video' label (--no-label removes it)"))
    if args.pipelining == "auto":
        described = {"split": "split in two threads", "serial": "one thread",
                     "adaptive": "adaptive (one frame at a time while that keeps up with the camera, "
                                 "landmarks overlapping the swap while it does not)"}[session.pipelining]
        _say(f"processing: {described} ({os.cpu_count()} CPU cores; change with --pipelining split|serial)")
    api = None
    if args.api:
        try:
            api = start_api(session, args.api, args.api_token, lambda: gallery_for(session), _say)
        except ApiAddressError as exc:
            session.close()
            source.close()
            return _fail(str(exc))
    _stop_on_signals()
    keys = ", ".join(f"{k} {name}" for k, name in live_settings.HOTKEYS.items())
    _say("running — Ctrl-C stops" + (f" (window keys: {keys}, q quit, n/p model, s screenshot, h HUD)"
                                      if any(type(s).__name__ == "WindowSink" for s in sinks) else ""))
    try:
        stats = session.run(max_frames=args.max_frames)
    finally:
        if api is not None:
            api.stop()
        session.close()
    print(stats.summary(), flush=True)
    for sink in sinks:
        if hasattr(sink, "path") and Path(sink.path).exists():
            _say(f"wrote {sink.path}")
    if args.stats_json:
        write_text(args.stats_json, json.dumps(stats.as_dict(), indent=2))
    if stats.errors:
        for err in stats.errors:
            print(f"swapcam live: error: {err}", file=sys.stderr)
        return 1
    return 0
