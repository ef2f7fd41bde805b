"""The verification tool's tests: small task folders, a store on a fake clock, and a real server in a subprocess.

``annotation/`` is a top-level folder beside ``vng/``, not an installed package: the repository root goes on the
import path, as ``python -m annotation`` run from the root has it.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from annotation.sample_tasks import synthetic_tasks  # noqa: E402
from vng.points import CandidateConfig  # noqa: E402

# 2 fg + 2 bg + 1 uncertain on 3 frames: 15 candidates per object, enough for every rule, quick to click through.
SMALL = CandidateConfig(num_foreground=2, num_background=2, num_uncertain=1, num_frames=3, min_distance=8.0)
TOKENS = {"alice": "alice-token-0123456789", "bob": "bob-token-0123456789ab", "carol": "carol-token-0123456789"}


def make_tasks(folder: Path, *, num_objects: int = 3, captions=None):
    return synthetic_tasks(folder, num_objects=num_objects, frame_size=(320, 180), captions=captions,
                           candidate_config=SMALL, seed=0)


@pytest.fixture(scope="session")
def task_folder(tmp_path_factory) -> Path:
    """Three objects of 15 candidates each (read-only for the tests: make your own with ``small_tasks``)."""
    folder = tmp_path_factory.mktemp("tasks")
    make_tasks(folder)
    return folder


@pytest.fixture
def small_tasks():
    """``small_tasks(folder, num_objects=3, captions=None)`` writes a task folder like ``task_folder``'s."""
    return make_tasks


class FakeClock:
    """ms since the epoch, moved by the test."""

    def __init__(self, now: int = 1_700_000_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tokens() -> dict[str, str]:
    """The annotators every test server knows, with their tokens."""
    return dict(TOKENS)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``python -m annotation serve`` in a subprocess, as a user starts it; restartable on the same port and file."""

    def __init__(self, tasks: Path, db: Path, *, tokens: dict[str, str] = TOKENS, extra: tuple[str, ...] = ()):
        self.tasks, self.db, self.extra = tasks, db, extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tokens_file = db.with_suffix(".tokens")
        self.tokens_file.write_text("".join(f"{name} {token}\n" for name, token in tokens.items()))
        self.log = db.with_suffix(".log")
        self.process: subprocess.Popen | None = None

    def start(self) -> "Server":
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "annotation", "serve", str(self.tasks), "--db", str(self.db), "--tokens",
                 str(self.tokens_file), "--port", str(self.port), *self.extra],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()}")
            try:
                urllib.request.urlopen(f"{self.url}/api/session", timeout=1)
            except urllib.error.HTTPError as error:
                if error.code == 401:  # up, and asking for a token
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the server did not start: {self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the machine or the process dies."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def login(self, name: str) -> str:
        return f"{self.url}/login?token={TOKENS[name]}"


@pytest.fixture
def start_server(tmp_path):
    """``start_server(task_folder, name="verdicts")`` runs a server on a fresh store; all are stopped after the
    test."""
    started = []

    def start(tasks: Path, name: str = "verdicts") -> Server:
        started.append(Server(tasks, tmp_path / f"{name}.sqlite"))
        return started[-1].start()

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def server(task_folder, start_server) -> Server:
    """A running server on the shared task folder with a fresh store."""
    return start_server(task_folder)
