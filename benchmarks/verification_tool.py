"""Round trip per verdict with 20 annotators at once, verdicts stored vs sent, and the page's load time.

The server runs as users start it (``python -m annotation serve``, a subprocess on a loopback port, a fresh SQLite
file). Simulated annotators are threads with their own HTTP connection and token: each claims an object, answers its
candidates in order, moves on when done, and resends a share of its answers with the same event id (a retry, which
must not be stored twice). Two loads, each for a bounded time:

- ``paced``: every annotator answers about once per 0.95 s (the paper's pace per point, Sec. 3.2);
- ``flat out``: no pause between answers (the server's ceiling).

Then the page's load time for one object of 10 frames at 1280x720 in headless Chromium (a fresh browser context
each time, so nothing is cached): from the navigation to the first candidate on screen, and until every frame and
overlay has arrived. Run from the repository root:

    python benchmarks/verification_tool.py [--seconds 20] [--annotators 20] [--screenshot annotation/docs/page.png]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotation.sample_tasks import synthetic_tasks  # noqa: E402
from annotation.store import Store  # noqa: E402
from vng.types import VerdictAction  # noqa: E402

STATUSES = ("ACCEPTED", "REJECTED", "AMBIGUOUS")
PAPER_SECONDS_PER_POINT = 0.95  # Sec. 3.2
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]


class Server:
    def __init__(self, tasks: Path, db: Path, tokens: dict[str, str]) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = db
        tokens_file = db.with_suffix(".tokens")
        tokens_file.write_text("".join(f"{name} {token}\n" for name, token in tokens.items()))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen([sys.executable, "-m", "annotation", "serve", str(tasks), "--db", str(db),
                                         "--tokens", str(tokens_file), "--port", str(self.port)],
                                        cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/session").status_code == 401:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@dataclass
class Tally:
    round_trips: list[float] = field(default_factory=list)  # seconds, every answer request (retries included)
    acknowledged: int = 0  # distinct answers the server said it stored
    retries: int = 0  # answers resent with the same event id
    retried_as_new: int = 0  # resent answers the server did not recognise (must stay 0)
    refused: int = 0  # answers the server refused (must stay 0)
    lock: threading.Lock = field(default_factory=threading.Lock)


def annotate(url: str, token: str, deadline: float, pace: float | None, retry_share: float, seed: int,
             tally: Tally) -> None:
    """One annotator until ``deadline`` (module docstring)."""
    rng = random.Random(seed)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        assignment = client.post("/api/claim").json()
        while assignment["task"] is not None and time.monotonic() < deadline:
            object_id, position = assignment["task"]["object_id"], assignment["state"]["position"]
            while position is not None and time.monotonic() < deadline:
                body = {"event_id": uuid.uuid4().hex, "object_id": object_id, "action": "verdict",
                        "candidate": position, "status": rng.choice(STATUSES), "duration_ms": rng.randint(300, 2000)}
                sends = 2 if rng.random() < retry_share else 1
                for attempt in range(sends):
                    started = time.perf_counter()
                    response = client.post("/api/events", json=body)
                    elapsed = time.perf_counter() - started
                    with tally.lock:
                        tally.round_trips.append(elapsed)
                        if response.status_code != 200:
                            tally.refused += 1
                        elif attempt == 0:
                            tally.acknowledged += 1
                        else:
                            tally.retries += 1
                            tally.retried_as_new += not response.json()["duplicate"]
                if response.status_code != 200:
                    return
                position = response.json()["state"]["position"]
                if pace is not None:
                    time.sleep(rng.uniform(0.5, 1.5) * pace)
            if position is None:
                assignment = client.post("/api/next").json()


def run_load(tasks: Path, workdir: Path, *, annotators: int, seconds: float, pace: float | None,
             retry_share: float) -> dict:
    tokens = {f"annotator{i:02d}": f"benchmark-token-{i:02d}-{uuid.uuid4().hex}" for i in range(annotators)}
    db = workdir / f"load-{'paced' if pace else 'flat'}.sqlite"
    server = Server(tasks, db, tokens)
    tally = Tally()
    try:
        deadline = time.monotonic() + seconds
        threads = [threading.Thread(target=annotate, args=(server.url, token, deadline, pace, retry_share, seed,
                                                           tally))
                   for seed, token in enumerate(tokens.values())]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    store = Store(db, read_only=True)
    stored = sum(event.action is VerdictAction.VERDICT for event in store.events())
    store.close()
    round_trips = 1000 * np.asarray(tally.round_trips)
    return {"annotators": annotators, "seconds": round(elapsed, 1), "sent": tally.acknowledged,
            "stored": stored, "retries": tally.retries, "retries_stored_twice": tally.retried_as_new,
            "refused": tally.refused, "requests": len(round_trips),
            "per_second": round(len(round_trips) / elapsed, 1),
            "p50_ms": round(float(np.percentile(round_trips, 50)), 1),
            "p99_ms": round(float(np.percentile(round_trips, 99)), 1)}


def save_screenshot(png: bytes, path: Path) -> None:
    """A 256-colour PNG: a third of the size, for the README, with no visible loss on this page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.open(io.BytesIO(png)).convert("RGB").quantize(256).save(path, optimize=True)


def page_load(tasks: Path, workdir: Path, *, runs: int, screenshot: Path | None) -> dict:
    from playwright.sync_api import sync_playwright

    tokens = {"viewer": f"viewer-token-{uuid.uuid4().hex}"}
    server = Server(tasks, workdir / "page.sqlite", tokens)
    first, complete, transferred = [], [], []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            for _ in range(runs):
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                page = context.new_page()
                page.goto(f"{server.url}/login?token={tokens['viewer']}")
                page.wait_for_selector('body[data-state="candidate"]')
                first.append(float(page.get_attribute("body", "data-first-candidate-ms")))
                # Until every frame and overlay of the object (preloaded in the background) has arrived. Polled from
                # here: the page's content security policy forbids the string evaluation of wait_for_function.
                wanted = set(page.evaluate("[view.task.keyframe.image, view.task.keyframe.trace, "
                                           "...view.task.frames.flatMap(f => [f.image, f.mask])]"))
                while True:
                    entries = page.evaluate("performance.getEntriesByType('resource').map(e => "
                                            "[new URL(e.name).pathname, e.responseEnd, e.encodedBodySize])")
                    if wanted <= {path for path, end, _ in entries if end > 0}:
                        break
                    time.sleep(0.02)
                complete.append(max(end for _, end, _ in entries))
                transferred.append(sum(size for _, _, size in entries))
                if screenshot is not None and len(first) == runs:
                    for key in "aaar":
                        page.keyboard.press(key)
                        page.wait_for_selector('body[data-busy="0"]')
                    save_screenshot(page.screenshot(), screenshot)
                context.close()
            browser.close()
    finally:
        server.stop()
    return {"runs": runs, "first_candidate_ms": round(statistics.median(first)),
            "first_candidate_ms_first_run": round(first[0]), "all_frames_ms": round(statistics.median(complete)),
            "transferred_kb": round(statistics.median(transferred) / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each load")
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--retry-share", type=float, default=0.05, help="share of answers sent twice")
    parser.add_argument("--page-runs", type=int, default=5)
    parser.add_argument("--screenshot", type=Path, help="also save the page (1400x900 window) here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        workdir = Path(temporary)
        # Load: small frames (their size does not matter to an answer), 200 candidates per object as in the paper.
        synthetic_tasks(workdir / "load", num_objects=4 * args.annotators, frame_size=(320, 180))
        synthetic_tasks(workdir / "page", num_objects=1, frame_size=(1280, 720))
        for name, pace in (("paced", PAPER_SECONDS_PER_POINT), ("flat out", None)):
            result = run_load(workdir / "load", workdir, annotators=args.annotators, seconds=args.seconds, pace=pace,
                              retry_share=args.retry_share)
            print(f"{name}: {result}")
            if result["sent"] != result["stored"] or result["retries_stored_twice"] or result["refused"]:
                raise SystemExit("stored verdicts differ from the acknowledged ones")
        result = page_load(workdir / "page", workdir, runs=args.page_runs, screenshot=args.screenshot)
        print(f"page load, 10 frames at 1280x720: {result}")


if __name__ == "__main__":
    main()
