"""The local HTTP control API of a live session (`swapcam live --api PORT`, `swapcam app --api PORT`).

FastAPI on uvicorn, in a thread of its own: it only calls the session's thread-safe commands and reads its
state, so the live loop never waits for it. Every request needs ``Authorization: Bearer TOKEN``; JSON in and
out; errors are ``{"error": "one line"}``:

    GET   /api/state        target, settings, bypass, outputs, live figures
    PATCH /api/settings     any subset of the live settings -> the new settings (400: unknown name / bad value,
                            nothing changed)
    POST  /api/target       {"path": "...", "wait": true} -> switches target (400 with --model's errors)
    GET   /api/targets      the gallery: models and photos with identity and consent
    PATCH /api/outputs      {"virtual_camera": bool, "recording": bool, "record_path": "..."}
    GET   /api/openapi.json the OpenAPI document (FastAPI's own; its interactive page loads scripts from the
                            internet, which swapcam never does, so only the document is served)

401 for a missing or wrong token (on any path), 404 for an unknown path.
"""

# No `from __future__ import annotations` here: FastAPI reads the handlers' annotations (``request: Request``,
# imported inside ``make_app`` so that `swapcam live` without --api never imports FastAPI) as live objects.
import hmac
import ipaddress
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

LOOPBACK_NAMES = ("localhost",)
TARGET_WAIT_S = 120.0  # POST /api/target waits this long for the load before answering 202 (still loading)


class ApiAddressError(ValueError):
    """An --api value that is not [HOST:]PORT, or a port that cannot be bound."""


def parse_address(text: str) -> tuple[str, int, bool]:
    """'8000' -> ('127.0.0.1', 8000, False); 'HOST:PORT' / '[::1]:PORT' -> (host, port, explicit=True)."""
    text = text.strip()
    host, explicit = "127.0.0.1", False
    port_text = text
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1:end + 2] != ":":
            raise ApiAddressError(f"--api {text!r}: write [IPV6]:PORT, e.g. [::1]:8765")
        host, port_text, explicit = text[1:end], text[end + 2:], True
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
        explicit = True
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ApiAddressError(f"--api {text!r}: the port must be a number 0-65535 ([HOST:]PORT, e.g. 8765)")
    if not host:
        raise ApiAddressError(f"--api {text!r}: empty host ([HOST:]PORT)")
    return host, int(port_text), explicit


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _error(status: int, message: str, headers: dict | None = None):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status, headers=headers)


def make_app(session, token: str, gallery: Callable[[], list[dict]]):
    """The FastAPI application for ``session`` (a ``realtime.session.LiveSession``); ``gallery()`` lists the
    targets (dicts of ``realtime.swap.targets.TargetEntry.as_dict``)."""
    from fastapi import FastAPI, Request
    from starlette.exceptions import HTTPException

    from realtime import live_settings

    app = FastAPI(title="swapcam control API", version="1", docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json",
                  description="Drive a running swapcam live session. Every request needs `Authorization: Bearer TOKEN`.")
    expected = token.encode()

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            return _error(401, "missing or wrong token: send 'Authorization: Bearer TOKEN' (the token swapcam printed "
                               "at start, or the one given with --api-token)", {"WWW-Authenticate": "Bearer"})
        return await call_next(request)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if exc.status_code == 404:
            return _error(404, f"unknown path {request.url.path}; paths: /api/state, /api/settings, /api/target, "
                               "/api/targets, /api/outputs, /api/openapi.json")
        if exc.status_code == 405:
            return _error(405, f"{request.method} is not allowed on {request.url.path}")
        return _error(exc.status_code, str(exc.detail))

    async def json_body(request: Request):
        try:
            return await request.json()
        except ValueError as exc:
            raise _BadRequest(f"the body is not JSON ({exc})") from None

    @app.exception_handler(_BadRequest)
    async def bad_request(request: Request, exc: _BadRequest):
        return _error(400, str(exc))

    @app.get("/api/state", summary="The current target, settings, bypass, outputs and live figures")
    def state() -> dict:
        return session.state()

    schema = live_settings.json_schema()

    @app.patch("/api/settings", summary="Change any subset of the live settings (all or nothing)",
               openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}})
    async def patch_settings(request: Request) -> dict:
        body = await json_body(request)
        try:
            settings = session.update(body)
        except live_settings.SettingError as exc:
            raise _BadRequest(str(exc)) from None
        return {"settings": settings, "version": session.version}

    target_schema = {"type": "object", "required": ["path"], "additionalProperties": False,
                     "properties": {"path": {"type": "string", "description": "a model (.onnx/.dfm), photo, folder of "
                                             "photos or video, as --model takes; relative to where swapcam runs"},
                                    "wait": {"type": "boolean", "default": True,
                                             "description": "answer when the target is on screen (else at once, 202)"}}}

    @app.post("/api/target", summary="Switch the target (the old one stays on screen until the new one is ready)",
              openapi_extra={"requestBody": {"required": True,
                                             "content": {"application/json": {"schema": target_schema}}}})
    async def post_target(request: Request):
        from fastapi.responses import JSONResponse
        from starlette.concurrency import run_in_threadpool

        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("path"), str) or not body["path"]:
            raise _BadRequest('give the target as {"path": "models/NAME.onnx"} (a model, photo, folder or video)')
        unknown = sorted(set(body) - {"path", "wait"})
        if unknown or not isinstance(body.get("wait", True), bool):
            raise _BadRequest(f"unknown field {unknown[0]!r}; fields: path, wait" if unknown else "wait: expected true or false")
        ticket = session.set_target(Path(body["path"]))
        if body.get("wait", True):
            await run_in_threadpool(ticket.wait, TARGET_WAIT_S)
        if ticket.done and not ticket.ok:
            raise _BadRequest(ticket.error or "the target could not be used")
        if not ticket.done:
            return JSONResponse({"loading": str(ticket.path), "target": session.target.as_dict()}, status_code=202)
        return {"target": session.target.as_dict(), "version": ticket.version}

    @app.get("/api/targets", summary="The gallery: models and photos with identity and consent")
    def targets() -> dict:
        return {"current": str(session.target.path), "targets": gallery()}

    outputs_schema = {"type": "object", "additionalProperties": False,
                      "properties": {"virtual_camera": {"type": "boolean"}, "recording": {"type": "boolean"},
                                     "record_path": {"type": "string"}}}

    @app.patch("/api/outputs", summary="Virtual camera on/off, recording start/stop",
               openapi_extra={"requestBody": {"required": True,
                                              "content": {"application/json": {"schema": outputs_schema}}}})
    async def patch_outputs(request: Request) -> dict:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise _BadRequest("expected an object, e.g. {\"virtual_camera\": true}")
        unknown = sorted(set(body) - set(outputs_schema["properties"]))
        if unknown:
            raise _BadRequest(f"unknown field {unknown[0]!r}; fields: {', '.join(outputs_schema['properties'])}")
        for name in ("virtual_camera", "recording"):
            if name in body and not isinstance(body[name], bool):
                raise _BadRequest(f"{name}: expected true or false, got {body[name]!r}")
        if "record_path" in body and (not isinstance(body["record_path"], str) or not body["record_path"]):
            raise _BadRequest("record_path: expected a file name, e.g. \"take1.mp4\"")
        if "virtual_camera" in body:
            session.set_virtual_camera(body["virtual_camera"])
        if body.get("recording") is True:
            session.start_recording(Path(body.get("record_path") or "swapcam_recording.mp4"))
        elif body.get("recording") is False:
            session.stop_recording()
        return {"outputs": session.outputs.describe()}

    return app


class _BadRequest(Exception):
    """A request the API answers with 400 and this one-line reason."""


class ApiServer:
    """uvicorn serving ``app`` on (host, port) in a daemon thread. The socket is bound here, in the caller's
    thread, so a port in use is a clear error at start (ApiAddressError); port 0 picks a free one (``port``)."""

    def __init__(self, app, host: str, port: int) -> None:
        import uvicorn

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise ApiAddressError(f"--api {host}:{port}: cannot listen there ({exc.strerror or exc})") from None
        self.sock.listen(64)
        self.host, self.port = host, self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, name="control-api",
                                        daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> "ApiServer":
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)
        self.sock.close()


def start_api(session, address: str, token: str | None, gallery: Callable[[], list[dict]],
              say: Callable[[str], None]) -> ApiServer:
    """Parse ``--api``, bind, start, and tell the person where it listens and with which token (a random one is
    made once and kept in the config folder unless ``token`` is given). Raises ApiAddressError."""
    from swapcam.config import api_token, config_dir

    host, port, _ = parse_address(address)
    if not is_loopback(host):
        print(f"warning: the control API listens on {host}, not only on this machine: anyone who can reach port "
              f"{port} here and has the token can change what your camera shows", file=sys.stderr, flush=True)
    where = "given with --api-token"
    if not token:
        token = api_token()
        where = f"kept in {config_dir() / 'api_token'}"
    server = ApiServer(make_app(session, token, gallery), host, port).start()
    say(f"control API on {server.url}/api/ — token {token} ({where}); e.g. curl -H 'Authorization: Bearer {token}' "
        f"{server.url}/api/state")
    return server
