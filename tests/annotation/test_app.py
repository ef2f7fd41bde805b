"""The HTTP surface in-process: every route behind the token, clear 4xx that change nothing, headers, export."""

import pytest
from fastapi.testclient import TestClient

from annotation.app import create_app
from annotation.images import TaskFiles
from annotation.service import VerificationService
from annotation.store import Store
from annotation.tokens import TokenTable
from vng.io.pointvos import read_pv_annotations
from vng.io.tasks import read_tasks, read_verdicts
from vng.types import frame_id


@pytest.fixture
def api(task_folder, tmp_path, tokens):
    store = Store(tmp_path / "verdicts.sqlite", exclusive=True)
    service = VerificationService(read_tasks(task_folder), store)
    app = create_app(service, TaskFiles(task_folder, service.tasks), TokenTable(tokens),
                     export_dir=tmp_path / "export")
    client = TestClient(app, base_url="http://127.0.0.1")
    client.store = store
    client.headers["Authorization"] = f"Bearer {tokens['alice']}"
    yield client
    store.close()


def event(object_id, candidate=0, status="ACCEPTED", event_id="event-0001", **extra):
    return {"event_id": event_id, "object_id": object_id, "action": "verdict", "candidate": candidate,
            "status": status, "duration_ms": 700, **extra}


ROUTES = [("GET", "/"), ("GET", "/static/app.js"), ("GET", "/static/style.css"), ("GET", "/api/session"),
          ("POST", "/api/claim"), ("POST", "/api/next"), ("POST", "/api/events"), ("POST", "/api/heartbeat"),
          ("POST", "/api/release"), ("GET", "/api/progress"), ("POST", "/api/export"),
          ("GET", "/api/objects/x/frames/000000/image"), ("GET", "/api/objects/x/frames/000000/mask"),
          ("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/no/such/route")]


@pytest.mark.parametrize("method, path", ROUTES)
@pytest.mark.parametrize("credentials", [{}, {"Authorization": "Bearer wrong-token-0123456789"},
                                         {"Cookie": "vng_verify_token=wrong-token-0123456789"}])
def test_every_request_needs_a_valid_token(api, method, path, credentials):
    del api.headers["Authorization"]
    response = api.request(method, path, headers=credentials, json={} if method == "POST" else None)
    assert response.status_code == 401 and "token" in response.json()["detail"]
    assert api.store.count_events() == 0


def test_login_sets_a_strict_http_only_cookie_that_then_opens_the_page(api, tokens):
    del api.headers["Authorization"]
    assert api.get("/login", params={"token": "nope"}, follow_redirects=False).status_code == 401
    assert not api.cookies
    response = api.get("/login", params={"token": tokens["bob"]}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    session = api.get("/api/session").json()
    assert session["annotator"] == "bob" and session["heartbeat_seconds"] * 4 <= session["lease_seconds"]


def test_the_page_comes_with_a_policy_that_runs_only_its_own_script(api):
    response = api.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


def test_bad_requests_get_a_clear_4xx_and_change_nothing(api):
    object_id = api.post("/api/claim").json()["task"]["object_id"]
    cases = [
        (413, dict(content=b"{" + b" " * 20_000 + b"}", headers={"Content-Type": "application/json"})),
        (415, dict(content=b"event_id=x", headers={"Content-Type": "application/x-www-form-urlencoded"})),
        (422, dict(content=b"{not json", headers={"Content-Type": "application/json"})),
        (422, dict(json=event(object_id, candidate="0"))),  # strings are not numbers
        (422, dict(json=event(object_id, status="YES"))),
        (422, dict(json=event(object_id, event_id="../x"))),
        (422, dict(json=event(object_id, unknown=1))),
        (422, dict(json=event(object_id, duration_ms=-5))),
        (422, dict(json=event(object_id, status=None))),  # a verdict needs a label
        (404, dict(json=event("f" * 32))),
        (409, dict(json=event(object_id, candidate=3))),  # not the current candidate
        (409, dict(json={**event(object_id), "action": "undo", "status": None})),  # nothing to undo
    ]
    for status, request in cases:
        response = api.post("/api/events", **request)
        assert response.status_code == status, (request, response.text)
        assert response.json()["detail"]
    assert api.store.count_events() == 0
    assert api.post("/api/events", json=event(object_id)).status_code == 200  # and a good one still works


def test_a_retried_request_counts_once(api):
    object_id = api.post("/api/claim").json()["task"]["object_id"]
    first = api.post("/api/events", json=event(object_id))
    again = api.post("/api/events", json=event(object_id))
    assert first.json() == {**again.json(), "duplicate": False} and again.json()["duplicate"]
    assert first.json()["state"]["position"] == 1
    assert api.post("/api/events", json=event(object_id, status="REJECTED")).status_code == 409
    assert api.store.count_events() == 1


def test_frames_are_served_by_task_and_frame_id(api, task_folder):
    task = api.post("/api/claim").json()["task"]
    frame = task["frames"][0]
    response = api.get(frame["image"])
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.content == (task_folder / read_tasks(task_folder)[0].frames[0].image).read_bytes()
    overlay = api.get(frame["mask"])
    assert overlay.status_code == 200 and overlay.content.startswith(b"\x89PNG")
    assert api.get(task["keyframe"]["trace"]).status_code == 200
    assert api.get(f"/api/objects/{task['object_id']}/frames/999999/image").status_code == 404
    assert api.get(f"/api/objects/{task['object_id']}/frames/{frame['frame_id']}/trace").status_code == 404


def test_export_endpoint_writes_the_log_and_the_release(api, tmp_path):
    task = api.post("/api/claim").json()["task"]
    for position in range(len(task["candidates"])):
        response = api.post("/api/events", json=event(task["object_id"], position, event_id=f"event-{position:04d}"))
        assert response.status_code == 200
    result = api.post("/api/export").json()
    assert result["released"] == 1 and result["files"] == ["verdicts.jsonl", "Oops/train.json", "summary.json"]
    [released] = read_pv_annotations(tmp_path / "export" / "Oops" / "train.json")
    assert released.object_id == task["object_id"]
    assert len(read_verdicts(tmp_path / "export" / "verdicts.jsonl")) == len(task["candidates"])


def test_the_page_gets_the_task_record_with_urls_for_paths(api, task_folder):
    task = api.post("/api/claim").json()["task"]
    stored = {t.object_id: t for t in read_tasks(task_folder)}[task["object_id"]]
    assert set(task) == {"object_id", "object_name", "question", "noun_span", "frame_size", "keyframe", "frames",
                         "candidates"}
    assert (task["object_name"], task["question"], task["frame_size"]) == (
        stored.object_name, stored.question, list(stored.frame_size))
    assert task["candidates"] == [{"frame_id": frame_id(c.frame_index), "x": c.x, "y": c.y, "kind": c.kind.value}
                                  for c in stored.candidates]
    assert [frame["frame_id"] for frame in task["frames"]] == [frame_id(f.frame_index) for f in stored.frames]
    for frame in (task["keyframe"], *task["frames"]):  # files as URLs of this object, never paths
        assert all(url is None or url.startswith(f"/api/objects/{task['object_id']}/frames/{frame['frame_id']}/")
                   for key, url in frame.items() if key != "frame_id")
