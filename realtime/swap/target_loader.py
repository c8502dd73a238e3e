"""Targets for a running live loop: opened off the live thread, cached, handed over when ready.

``open_target(path, options)`` opens and warms up the swapper of anything ``--model`` takes (a model, a photo,
a folder of photos, a video). ``TargetLoader`` does that in a thread of its own, one target at a time, the
newest request first (an older request not yet started is dropped, and its ticket says so), and keeps the
loaded ones (``CACHED_TARGETS`` besides the pinned start-up list) so that switching back is instant. A
``TargetTicket`` is the answer a front-end waits on.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CACHED_TARGETS = 4  # loaded targets kept besides the pinned ones


@dataclass
class Target:
    """A loaded target: its swapper (prepared) and what a gallery shows of it."""

    path: Path
    kind: str  # 'model' or 'photo'
    swapper: object
    forehead: float | None  # the photo option it was built with (None for models)

    @property
    def identity(self) -> str | None:
        return getattr(self.swapper, "identity", None)

    @property
    def consent(self) -> str | None:
        return getattr(self.swapper, "consent", None)

    def as_dict(self) -> dict:
        return {"path": str(self.path), "name": self.path.name, "kind": self.kind, "identity": self.identity,
                "consent": self.consent}


class TargetTicket:
    """The answer to a target request: ``wait()`` until the target is on screen (or failed); then ``ok``,
    ``error`` (one line) and ``version`` (the live session's command version of the switch: frames tagged
    with it or later show the target)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ok: bool | None = None
        self.error: str | None = None
        self.version: int | None = None
        self._done = threading.Event()

    def finish(self, ok: bool, error: str | None = None, version: int | None = None) -> None:
        self.ok, self.error, self.version = ok, error, version
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """True when finished (ok or not) within ``timeout`` seconds."""
        return self._done.wait(timeout)


def open_target(path: str | Path, options, forehead: float | None = None) -> Target:
    """Open and warm up the swapper of ``path`` with the options of a live session (``face_type``,
    ``crop_scale``, ``providers``, ``morph_value``, ``threads``, ``photo_resolution``, ``proportions``), a photo
    with ``forehead``. Raises ModelContractError / ReferenceError (ValueErrors with a one-line reason) for a
    target that cannot be used, as ``--model`` reports them."""
    from realtime.swap.swappers import open_swapper, swapper_kind

    path = Path(path).absolute()
    kind = swapper_kind(path)
    o = options
    swapper = open_swapper(path, face_type=o.face_type, crop_scale=o.crop_scale,
                           providers=list(o.providers) if o.providers else None, morph_value=o.morph_value,
                           threads=o.threads, resolution=o.photo_resolution, forehead=forehead,
                           proportions=o.proportions)
    swapper.prepare()
    return Target(path, kind, swapper, (forehead if forehead is not None else swapper.forehead) if kind == "photo" else None)


def one_line(exc: BaseException) -> str:
    """An error as a person reads it: our own errors' messages as they are, anything else with its type."""
    text = " ".join(str(exc).split())
    return text if isinstance(exc, (ValueError, OSError, RuntimeError)) and text else f"{type(exc).__name__}: {text}"


class TargetLoader:
    """Loads targets with ``open_target(path, forehead)`` in a thread of its own (see the module docstring);
    ``on_loaded(target, ticket)`` / ``on_failed(path, message, ticket)`` are called from that thread."""

    def __init__(self, open_target: Callable[[Path, float], Target], on_loaded, on_failed) -> None:
        self._open = open_target
        self._on_loaded, self._on_failed = on_loaded, on_failed
        self._cache: OrderedDict[tuple, Target] = OrderedDict()
        self.pinned: set[tuple] = set()
        self._request: tuple[tuple, Path, float, TargetTicket] | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.loading: Path | None = None

    @staticmethod
    def key(path: Path, kind: str, forehead: float | None) -> tuple:
        """The cache key: the file, and for a photo the option it is built with."""
        return (str(Path(path).resolve()), forehead if kind == "photo" else None)

    def cached(self, key: tuple) -> Target | None:
        with self._lock:
            target = self._cache.get(key)
            if target is not None:
                self._cache.move_to_end(key)
            return target

    def add(self, key: tuple, target: Target, pin: bool = False) -> None:
        with self._lock:
            self._cache[key] = target
            self._cache.move_to_end(key)
            if pin:
                self.pinned.add(key)
            loose = [k for k in self._cache if k not in self.pinned]
            for k in loose[:max(0, len(loose) - CACHED_TARGETS)]:
                del self._cache[k]

    def request(self, key: tuple, path: Path, forehead: float, ticket: TargetTicket) -> None:
        with self._lock:
            dropped, self._request = self._request, (key, path, forehead, ticket)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="target-loader", daemon=True)
                self._thread.start()
        if dropped is not None:
            dropped[3].finish(False, f"{dropped[1]}: another target was asked for before it was loaded")

    def _work(self) -> None:
        while True:
            with self._lock:
                request, self._request = self._request, None
                if request is None:
                    self.loading = None
                    return
                self.loading = request[1]
            key, path, forehead, ticket = request
            try:
                target = self._open(path, forehead)
            except Exception as exc:  # a bad file, a photo without a face, a provider that fails: reported
                self._on_failed(path, one_line(exc), ticket)
                continue
            self.add(key, target)
            self._on_loaded(target, ticket)

    def join(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
