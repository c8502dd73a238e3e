"""The control API over real HTTP on the loopback, driving a real live session."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from realtime.frames.sources import ImageFolderSource
from tests.fixtures.sessions import MODEL, PHOTO, WAIT_S, face_difference, frame_after, start_session

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(scope="module")
def api(still_folder):
    from realtime.swap.targets import describe_entry
    from swapcam.control_api import ApiServer, make_app

    session = start_session(ImageFolderSource(still_folder, fps=30, loop=True))
    gallery = lambda: [describe_entry(p).as_dict() for p in (PHOTO, MODEL)]  # noqa: E731
    server = ApiServer(make_app(session, TOKEN, gallery), "127.0.0.1", 0).start()
    yield session, server.url
    server.stop()
    session.close()


def call(url: str, method: str = "GET", body=None, token: str | None = TOKEN, raw: bytes | None = None):
    """(status, JSON answer) of one request."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=WAIT_S) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_every_request_needs_the_token(api):
    session, url = api
    for path, method in (("/api/state", "GET"), ("/api/settings", "PATCH"), ("/api/nothing", "GET"),
                         ("/api/openapi.json", "GET")):
        for token in (None, "wrong", TOKEN[:-1]):
            status, answer = call(url + path, method, {"bypass": True}, token=token)
            assert status == 401 and "token" in answer["error"], (path, token)
    assert session.settings["bypass"] is False


def test_state_has_target_settings_outputs_and_figures(api):
    session, url = api
    frame_after(session, session.version, settle=2)
    status, state = call(url + "/api/state")
    assert status == 200
    assert state["target"]["path"] == str(PHOTO) and state["target"]["kind"] == "photo"
    assert state["target"]["identity"].startswith("Face Research Lab London Set")
    assert state["settings"]["opacity"] == 1.0 and state["bypass"] is False
    assert state["figures"]["frames"] > 0 and state["figures"]["fps"] > 0 and state["figures"]["latency_p50_ms"] > 0
    assert state["outputs"]["virtual_camera"]["on"] is False
    status, answer = call(url + "/api/unknown")
    assert status == 404 and "/api/unknown" in answer["error"]


def test_patch_settings_changes_the_next_frames_and_rejects_bad_input_whole(api, face_mask):
    session, url = api
    status, answer = call(url + "/api/settings", "PATCH", {"bypass": True, "opacity": 0.8})
    assert status == 200 and answer["settings"]["bypass"] is True and answer["settings"]["opacity"] == 0.8
    passed = frame_after(session, answer["version"])
    assert passed.info.faces == 0 and face_difference(passed.image, passed.source, face_mask) < 2.5  # watermark: +-2
    before = session.settings
    for body, why in (({"opacity": 2}, "opacity: 2 is outside [0, 1]"), ({"bypass": False, "zoom": 2}, "unknown setting 'zoom'"),
                      ({"color": "sepia"}, "color: 'sepia' is not one of"), ([1, 2], "expected an object")):
        status, answer = call(url + "/api/settings", "PATCH", body)
        assert status == 400 and why in answer["error"] and "\n" not in answer["error"], body
    status, answer = call(url + "/api/settings", "PATCH", raw=b"{not json")
    assert status == 400 and "not JSON" in answer["error"]
    assert session.settings == before
    status, answer = call(url + "/api/settings", "PATCH", {"bypass": False, "opacity": 1.0})
    back = frame_after(session, answer["version"], settle=2)
    assert back.info.faces == 1 and face_difference(back.image, back.source, face_mask) > 8


def test_post_target_switches_and_reports_errors_like_model(api, tmp_path, face_mask):
    session, url = api
    photo_face = frame_after(session, session.version, settle=3)
    status, answer = call(url + "/api/target", "POST", {"path": str(MODEL)})
    assert status == 200 and answer["target"]["path"] == str(MODEL) and answer["target"]["kind"] == "model"
    model_face = frame_after(session, answer["version"], settle=3)
    assert model_face.target == str(MODEL) and face_difference(model_face.image, photo_face.image, face_mask) > 8
    junk = tmp_path / "junk.onnx"
    junk.write_text("hello")
    for body, why in (({"path": str(tmp_path / "nope.onnx")}, "model file not found"),
                      ({"path": str(junk)}, "not an ONNX model"), ({}, 'give the target as {"path"'),
                      ({"path": str(MODEL), "speed": 1}, "unknown field 'speed'")):
        status, answer = call(url + "/api/target", "POST", body)
        assert status == 400 and why in answer["error"], (body, answer)
    assert session.target.path == MODEL
    status, answer = call(url + "/api/target", "POST", {"path": str(PHOTO)})
    assert status == 200 and frame_after(session, answer["version"]).target == str(PHOTO)


def test_targets_outputs_and_the_openapi_document(api, tmp_path):
    session, url = api
    status, answer = call(url + "/api/targets")
    assert status == 200 and answer["current"] == str(session.target.path)
    by_name = {t["name"]: t for t in answer["targets"]}
    assert by_name["demo.onnx"]["identity"] == "GRID corpus speaker s1" and by_name["demo.onnx"]["consent"]
    assert by_name["london_063.jpg"]["kind"] == "photo"
    status, answer = call(url + "/api/outputs", "PATCH", {"virtual_camera": "yes"})
    assert status == 400 and "virtual_camera: expected true or false" in answer["error"]
    take = tmp_path / "api_take.mp4"
    status, answer = call(url + "/api/outputs", "PATCH", {"recording": True, "record_path": str(take)})
    assert status == 200
    session.preview.wait_for(lambda f: session.outputs.record_frames >= 3, WAIT_S)
    status, answer = call(url + "/api/outputs", "PATCH", {"recording": False})
    assert status == 200
    session.preview.wait_for(lambda f: session.outputs.recorder is None, WAIT_S)  # stopped between two frames
    session.outputs.join_finishers()
    assert take.exists()
    status, document = call(url + "/api/openapi.json")
    assert status == 200 and {"/api/state", "/api/settings", "/api/target", "/api/targets"} <= set(document["paths"])
    body = document["paths"]["/api/settings"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["opacity"]["maximum"] == 1.0


def test_api_addresses():
    from swapcam.control_api import ApiAddressError, ApiServer, is_loopback, parse_address

    assert parse_address("8765") == ("127.0.0.1", 8765, False)
    assert parse_address("0.0.0.0:9000") == ("0.0.0.0", 9000, True)
    assert parse_address("[::1]:9000") == ("::1", 9000, True)
    for bad in ("http", "host:", "99999", "[::1]9000"):
        with pytest.raises(ApiAddressError):
            parse_address(bad)
    assert is_loopback("localhost") and is_loopback("127.0.0.2") and is_loopback("::1") and not is_loopback("0.0.0.0")
    first = ApiServer(None, "127.0.0.1", 0)
    try:
        with pytest.raises(ApiAddressError, match="cannot listen there"):
            ApiServer(None, "127.0.0.1", first.port)
    finally:
        first.sock.close()
