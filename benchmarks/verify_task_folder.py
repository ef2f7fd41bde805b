"""Verify every candidate of a task folder through the real page, as an annotator would: the check that a folder made
by ``vng annotate prepare`` on real video (e.g. the OVIS sample) can be annotated end to end in the browser.

Starts ``python -m annotation serve`` on a fresh SQLite file, opens the page in Debian's headless ``chromium``
(Playwright), answers each candidate with one key press — by default the candidate's own proposed kind (A for
foreground, R for background, D for uncertain), or a seeded random key with ``--random`` — moves to the next object
with Enter until the tool has no object left, then exports and reads the release back with ``vng.io.pointvos``::

    vng annotate prepare NARRATIVES.jsonl --videos VIDEOS --out work
    python benchmarks/verify_task_folder.py work/tasks --out /tmp/verified

Prints, per object, the candidates answered and the seconds the page took, and checks that the exported release
holds every object and as many points of each status as were answered (exit 1 otherwise).
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vng.io.pointvos import LABEL_TO_STATUS, read_pv_annotations, release_file  # noqa: E402
from vng.io.tasks import read_tasks  # noqa: E402
from vng.types import CandidateKind  # noqa: E402

KEY_OF_KIND = {CandidateKind.FOREGROUND: "a", CandidateKind.BACKGROUND: "r", CandidateKind.UNCERTAIN: "d"}
STATUS_OF_KEY = {"a": "ACCEPTED", "r": "REJECTED", "d": "AMBIGUOUS"}
TOKEN = "verify-token-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(tasks: Path, db: Path, port: int) -> subprocess.Popen:
    tokens = db.with_suffix(".tokens")
    tokens.write_text(f"checker {TOKEN}\n")
    process = subprocess.Popen([sys.executable, "-m", "annotation", "serve", str(tasks), "--db", str(db), "--tokens",
                                str(tokens), "--port", str(port)], cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the annotation server exited with code {process.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/session", timeout=1)
        except urllib.error.HTTPError as error:
            if error.code == 401:
                return process
        except OSError:
            pass
        time.sleep(0.1)
    process.terminate()
    raise RuntimeError("the annotation server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", type=Path, help="a task folder (tasks.jsonl)")
    parser.add_argument("--out", type=Path, required=True, help="a fresh folder for the store and the export")
    parser.add_argument("--random", action="store_true", help="answer with seeded random keys instead of the kinds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    # objects without candidates are never handed out (nothing to verify), nor released
    tasks = {task.object_id: task for task in read_tasks(args.tasks) if task.candidates}
    args.out.mkdir(parents=True, exist_ok=False)
    db = args.out / "verdicts.sqlite"
    rng = random.Random(args.seed)
    answered: dict[tuple[str, int], str] = {}
    port = free_port()
    server = start_server(args.tasks, db, port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                                 args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.set_default_timeout(30_000)
            page.goto(f"http://127.0.0.1:{port}/login?token={TOKEN}")
            while True:
                page.wait_for_selector('body[data-state="empty"], body[data-state="candidate"][data-busy="0"]')
                if page.get_attribute("body", "data-state") == "empty":
                    break  # nothing left to verify
                object_id = page.get_attribute("body", "data-object")
                task, start = tasks[object_id], time.perf_counter()
                for index, candidate in enumerate(task.candidates):
                    page.wait_for_selector(f'body[data-position="{index}"][data-busy="0"][data-object="{object_id}"]')
                    key = rng.choice("ard") if args.random else KEY_OF_KIND[candidate.kind]
                    page.keyboard.press(key)
                    answered[object_id, index] = STATUS_OF_KEY[key]
                page.wait_for_selector('body[data-position="done"][data-busy="0"]')
                print(f"{task.video_name} {task.object_name:<12} {object_id}: {len(task.candidates)} candidates "
                      f"in {time.perf_counter() - start:.1f} s", flush=True)
                page.keyboard.press("Enter")
                page.wait_for_selector(f'body[data-state="empty"], body:not([data-object="{object_id}"])')
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    subprocess.run([sys.executable, "-m", "annotation", "export", str(args.tasks), "--db", str(db), "--out",
                    str(args.out / "release")], cwd=ROOT, check=True)
    exported = {record.object_id: record
                for dataset, split in sorted({(task.dataset, task.split) for task in tasks.values()})
                for record in read_pv_annotations(release_file(args.out / "release", dataset, split))}
    missing = sorted(set(tasks) - set(exported))
    sent = Counter(answered.values())
    released = Counter(LABEL_TO_STATUS[int(label)] for record in exported.values() for frame in record.frames
                       for label in frame.points.labels)
    print(f"\n{len(answered)} candidates of {len(tasks)} objects answered in the browser "
          f"({', '.join(f'{n} {status}' for status, n in sorted(sent.items()))}); {len(exported)} objects read back "
          f"from the release ({', '.join(f'{n} {status}' for status, n in sorted(released.items()))}); "
          f"missing: {missing or 'none'}")
    if missing or sent != released or len({object_id for object_id, _ in answered}) != len(tasks):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
