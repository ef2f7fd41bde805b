"""The web app: the page, its JSON API and the pictures, on FastAPI.

Every route is behind the token check, the body limit and the security headers (:mod:`annotation.security`), which
wrap the whole app. Routes are plain functions (FastAPI runs them in its thread pool); the rules live in
:class:`annotation.service.VerificationService`, which serialises them.

API (JSON; the page is its only client in normal use, the benchmark another):

=========================================================  ======================================================
``GET /login?token=T``                                     sets the token cookie, redirects to the page
``GET /api/session``                                       who you are, lease timing
``POST /api/claim``                                        your current object (or the next one), your state on it
``POST /api/next``                                         leave a finished / skipped object, claim another
``POST /api/events``                                       one answer: verdict, undo or skip (idempotent by id)
``POST /api/heartbeat``, ``POST /api/release``             keep / give up the lease (``{"object_id": …}``)
``GET /api/objects/{id}/frames/{frame_id}/{image|mask|trace}``  a frame, its rough mask, the keyframe's trace
``GET /api/progress``                                      counts over all objects
``POST /api/export``                                       write the verdict log and the release (server side)
=========================================================  ======================================================
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from vng.io.pointvos import STATUS_TO_LABEL
from vng.io.tasks import task_record
from vng.types import VerdictAction, VerificationTask, frame_id, parse_frame_id

from annotation.export import export
from annotation.images import TaskFiles
from annotation.security import ANNOTATOR_KEY, COOKIE, RequestLimits, SecurityHeaders, TokenAuth
from annotation.service import (Assignment, Conflict, Invalid, NotFound, ObjectState, Progress, ServiceError,
                                VerificationService)
from annotation.tokens import TokenTable

__all__ = ["create_app", "MAX_BODY_BYTES", "HEARTBEAT_SECONDS"]

STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = 16 * 1024  # an answer is ~200 bytes; nothing the page sends comes near this
HEARTBEAT_SECONDS = 30  # how often the page renews its lease, at most (and at least 4 times per lease)
_FILES = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
_STATUS = {NotFound: 404, Conflict: 409, Invalid: 422}
# Task folders do not change while they are served: frames may be cached by the browser (privately: they need a token).
_IMAGE_CACHE = "private, max-age=86400"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class EventIn(_Strict):
    event_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
    object_id: Annotated[str, Field(min_length=1, max_length=256)]
    action: Literal["verdict", "undo", "skip"]
    candidate: Annotated[int, Field(ge=0)] | None = None
    status: Literal["ACCEPTED", "REJECTED", "AMBIGUOUS"] | None = None
    duration_ms: Annotated[int, Field(ge=0, le=86_400_000)] | None = None  # a day: anything longer is a bug


class ObjectRef(_Strict):
    object_id: Annotated[str, Field(min_length=1, max_length=256)]


def _url(object_id: str, frame_index: int, what: str) -> str:
    return f"/api/objects/{quote(object_id, safe='')}/frames/{frame_id(frame_index)}/{what}"


def task_view(task: VerificationTask) -> dict:
    """What the page needs of a task: its record (:func:`vng.io.tasks.task_record`: text, candidates in verification
    order) with the frames' files as URLs (never paths), without what the page does not show (dataset, split, video,
    question hash)."""
    record = task_record(task)

    def urls(frame: dict, mask: str) -> dict:  # the keyframe's mask is the trace
        index = parse_frame_id(frame["frame_id"])
        return {"frame_id": frame["frame_id"], "image": _url(task.object_id, index, "image"),
                mask: None if frame["mask"] is None else _url(task.object_id, index, mask)}

    return {**{key: record[key] for key in ("object_id", "object_name", "question", "noun_span", "frame_size")},
            "keyframe": urls(record["keyframe"], "trace"),
            "frames": [urls(frame, "mask") for frame in record["frames"]], "candidates": record["candidates"]}


def _state_view(state: ObjectState) -> dict:
    return {"object_id": state.object_id, "num_candidates": state.num_candidates, "position": state.position,
            "judged": state.judged, "last": state.last, "skipped": state.skipped, "finished": state.finished}


def _progress_view(progress: Progress) -> dict:
    return {"objects": progress.objects, "released": progress.released, "finished_by_you": progress.finished_by_you,
            "skipped_by_you": progress.skipped_by_you}


def _assignment_view(assignment: Assignment) -> dict:
    return {"task": None if assignment.task is None else task_view(assignment.task),
            "state": None if assignment.state is None else _state_view(assignment.state),
            "progress": _progress_view(assignment.progress)}


def _annotator(request: Request) -> str:
    return request.scope[ANNOTATOR_KEY]


def create_app(service: VerificationService, files: TaskFiles, tokens: TokenTable, *, export_dir: Path,
               max_body_bytes: int = MAX_BODY_BYTES):
    """The ASGI app: FastAPI's routes inside the security middleware."""
    # No generated docs: they would be routes outside the token check, and the API is documented above.
    app = FastAPI(title="vng verification tool", docs_url=None, redoc_url=None, openapi_url=None)
    static = {name: (STATIC / name).read_bytes() for name in ("index.html", *_FILES)}

    async def service_error(request: Request, error: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=_STATUS[type(error)])

    for error_type in _STATUS:
        app.add_exception_handler(error_type, service_error)

    @app.get("/login")
    def login(token: str = "") -> Response:
        if tokens.annotator(token) is None:
            return JSONResponse({"detail": "unknown token: use the link the server printed for you"}, status_code=401)
        response = RedirectResponse("/", status_code=303)
        # HttpOnly: no script can read it; SameSite=Strict: no other site's page can send it.
        response.set_cookie(COOKIE, token, max_age=30 * 86400, httponly=True, samesite="strict", path="/")
        return response

    @app.get("/")
    def page() -> Response:
        return Response(static["index.html"], media_type="text/html; charset=utf-8")

    @app.get("/static/{name}")
    def static_file(name: str) -> Response:
        if name not in _FILES:
            raise NotFound(f"no static file {name!r}")
        return Response(static[name], media_type=_FILES[name])

    @app.get("/api/session")
    def session(request: Request) -> dict:
        lease_seconds = service.config.lease_ms / 1000
        return {"annotator": _annotator(request), "annotators_per_object": service.config.annotators_per_object,
                "lease_seconds": lease_seconds, "heartbeat_seconds": min(HEARTBEAT_SECONDS, lease_seconds / 4)}

    @app.post("/api/claim")
    def claim(request: Request) -> dict:
        return _assignment_view(service.claim(_annotator(request)))

    @app.post("/api/next")
    def next_object(request: Request) -> dict:
        return _assignment_view(service.next(_annotator(request)))

    @app.post("/api/events")
    def record(request: Request, event: EventIn) -> dict:
        recorded = service.record(
            _annotator(request), event_id=event.event_id, object_id=event.object_id,
            action=VerdictAction(event.action), candidate=event.candidate,
            label=None if event.status is None else STATUS_TO_LABEL[event.status], duration_ms=event.duration_ms)
        return {"state": _state_view(recorded.state), "duplicate": recorded.duplicate}

    @app.post("/api/heartbeat")
    def heartbeat(request: Request, ref: ObjectRef) -> dict:
        service.heartbeat(_annotator(request), ref.object_id)
        return {"ok": True}

    @app.post("/api/release")
    def release(request: Request, ref: ObjectRef) -> dict:
        service.release(_annotator(request), ref.object_id)
        return {"ok": True}

    @app.get("/api/progress")
    def progress(request: Request) -> dict:
        return _progress_view(service.progress(_annotator(request)))

    @app.get("/api/objects/{object_id}/frames/{frame}/image")
    def image(object_id: str, frame: str) -> Response:
        path, media_type = files.image(object_id, frame)
        return FileResponse(path, media_type=media_type, headers={"cache-control": _IMAGE_CACHE})

    @app.get("/api/objects/{object_id}/frames/{frame}/{kind}")
    def overlay(object_id: str, frame: str, kind: str) -> Response:
        if kind not in ("mask", "trace"):
            raise NotFound(f"no {kind!r} for a frame: image, mask or trace")
        return Response(files.overlay(object_id, frame, kind), media_type="image/png",
                        headers={"cache-control": _IMAGE_CACHE})

    exporting = threading.Lock()  # two clicks at once: one export's files, never a mix of two snapshots

    @app.post("/api/export")
    def export_release() -> dict:
        with exporting:
            result = export(list(service.tasks.values()), service.events(), export_dir,
                            annotators_per_object=service.config.annotators_per_object)
        return {"folder": str(export_dir), "released": len(result.resolved.objects),
                "unfinished": len(result.resolved.unfinished), "skipped": len(result.resolved.skipped),
                "agreement": result.resolved.agreement,
                "files": [str(path.relative_to(export_dir)) for path in (result.verdicts, *result.release,
                                                                         result.summary)]}

    return SecurityHeaders(TokenAuth(RequestLimits(app, max_body_bytes=max_body_bytes), tokens,
                                     open_paths=frozenset({"/login"})))
