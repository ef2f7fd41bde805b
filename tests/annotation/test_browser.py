"""End to end in a real headless Chromium (Debian's ``chromium`` package, driven by Playwright): the server runs as a
subprocess on a free loopback port, exactly as ``python -m annotation serve`` starts it, and every check reads what
the server stored."""

import shutil
import socket
import time

import pytest

from annotation.store import Store
from vng.io.pointvos import LABEL_TO_STATUS
from vng.io.tasks import read_tasks
from vng.types import PointLabel, VerdictAction
from vng.verification import replay

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium); "
                                                          "CI installs it")
STATUS_OF_KEY = {"a": "ACCEPTED", "1": "ACCEPTED", "r": "REJECTED", "2": "REJECTED", "d": "AMBIGUOUS",
                 "3": "AMBIGUOUS"}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # The machine's network is closed: no GPU, no background fetches, no first-run pages.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run"])
        yield launched
        launched.close()


class Annotator:
    """One annotator's browser context (its own cookies) on the page."""

    def __init__(self, browser, server, name):
        self.server = server
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("pageerror", lambda error: self.errors.append(error))
        self.page.goto(server.login(name))

    def wait(self, position, object_id=None):
        """Until the page shows candidate ``position`` ("done": every candidate answered) and is idle."""
        selector = f'body[data-position="{position}"][data-busy="0"]'
        if object_id is not None:
            selector += f'[data-object="{object_id}"]'
        self.page.wait_for_selector(selector)

    def answer(self, keys, start=0):
        """Press ``keys`` one by one, each on the candidate it answers."""
        for offset, key in enumerate(keys):
            self.wait(start + offset)
            self.page.keyboard.press(key)

    @property
    def object_id(self):
        return self.page.get_attribute("body", "data-object")


def stored(server):
    store = Store(server.db, read_only=True)
    try:
        return store.events()
    finally:
        store.close()


def verdicts(events):
    return [(e.candidate, LABEL_TO_STATUS[int(e.label)]) for e in events if e.action is VerdictAction.VERDICT]


def test_an_object_annotated_with_the_keyboard_alone(browser, server, task_folder):
    tasks = read_tasks(task_folder)
    task = tasks[0]
    alice = Annotator(browser, server, "alice")
    alice.wait(0, task.object_id)
    page = alice.page
    assert page.inner_text("#caption") == task.question
    assert page.inner_text("#caption mark") == task.object_name == page.inner_text("#noun")
    assert page.evaluate("document.getElementById('frame').naturalWidth") == task.frame_size[0]
    page.keyboard.press("m")  # overlays off and on again
    assert "no-overlay" in page.get_attribute("body", "class")
    page.keyboard.press("m")
    assert "no-overlay" not in (page.get_attribute("body", "class") or "")
    keys = [("a", "r", "d", "1", "2", "3")[i % 6] for i in range(len(task.candidates))]
    page.keyboard.down(keys[0])
    alice.wait(1)
    page.keyboard.down(keys[0])  # the key is still held: the browser repeats it, which must not answer candidate 1
    page.keyboard.up(keys[0])
    time.sleep(0.3)  # looking at candidate 1 for a while: its duration says so
    alice.answer(keys[1:], start=1)
    alice.wait("done")
    assert page.is_visible("#done")
    events = stored(server)
    assert verdicts(events) == [(i, STATUS_OF_KEY[key]) for i, key in enumerate(keys)]
    assert {e.annotator for e in events} == {"alice"} and {e.object_id for e in events} == {task.object_id}
    assert all(e.duration_ms is not None for e in events) and events[1].duration_ms >= 300
    page.keyboard.press("Enter")
    alice.wait(0, tasks[1].object_id)
    assert page.inner_text("#overall").startswith("Objects done 1 of 3")
    assert not alice.errors


def test_undo_with_keys_and_buttons_is_recorded_as_events(browser, server):
    alice = Annotator(browser, server, "alice")
    page = alice.page
    alice.answer(["a"])
    alice.wait(1)
    page.click("button[data-action=reject]")
    alice.wait(2)
    page.keyboard.press("u")
    alice.wait(1)
    page.click("button[data-action=undo]")
    alice.wait(0)
    page.keyboard.press("d")
    alice.wait(1)
    events = stored(server)
    assert [(e.action, e.candidate) for e in events] == [
        (VerdictAction.VERDICT, 0), (VerdictAction.VERDICT, 1), (VerdictAction.UNDO, 1), (VerdictAction.UNDO, 0),
        (VerdictAction.VERDICT, 0)]
    assert replay(events)[alice.object_id]["alice"].labels == {0: PointLabel.AMBIGUOUS}
    assert not alice.errors


def test_a_reload_in_the_middle_of_an_object_resumes_exactly(browser, server):
    alice = Annotator(browser, server, "alice")
    alice.answer(["a", "a", "r"])
    alice.wait(3)
    object_id = alice.object_id
    alice.page.reload()
    alice.wait(3, object_id)
    alice.answer(["d", "a"], start=3)
    alice.wait(5)
    assert verdicts(stored(server)) == [(0, "ACCEPTED"), (1, "ACCEPTED"), (2, "REJECTED"), (3, "AMBIGUOUS"),
                                        (4, "ACCEPTED")]


def test_a_killed_server_loses_nothing_and_the_page_carries_on_after_the_restart(browser, server):
    alice = Annotator(browser, server, "alice")
    alice.answer(["a", "a"])
    alice.wait(2)
    object_id = alice.object_id
    server.kill()
    assert verdicts(stored(server)) == [(0, "ACCEPTED"), (1, "ACCEPTED")]  # every acknowledged answer is on disk
    alice.page.keyboard.press("r")  # given while the server is down: the page keeps it and retries
    alice.page.wait_for_selector("#status:not([hidden])")
    assert "Not saved yet" in alice.page.inner_text("#status")
    assert alice.page.get_attribute("body", "data-position") == "2"
    server.start()
    alice.wait(3, object_id)  # the retry got through
    assert alice.page.is_hidden("#status")
    alice.answer(["d"], start=3)
    alice.wait(4)
    alice.page.reload()
    alice.wait(4, object_id)
    assert verdicts(stored(server)) == [(0, "ACCEPTED"), (1, "ACCEPTED"), (2, "REJECTED"), (3, "AMBIGUOUS")]


def test_two_annotators_never_get_the_same_object(browser, server, task_folder):
    ids = [task.object_id for task in read_tasks(task_folder)]
    alice = Annotator(browser, server, "alice")
    alice.wait(0, ids[0])
    bob = Annotator(browser, server, "bob")
    bob.wait(0, ids[1])
    alice.answer(["a"] * len(read_tasks(task_folder)[0].candidates))
    alice.wait("done")
    alice.page.keyboard.press("Enter")
    alice.wait(0, ids[2])  # not bob's
    carol = Annotator(browser, server, "carol")
    carol.page.wait_for_selector('body[data-state="empty"]')  # every object is done or held
    assert {e.annotator for e in stored(server)} == {"alice"}


def test_a_caption_holding_markup_shows_as_text(browser, small_tasks, start_server, tmp_path):
    caption = ('<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> The red ellipse '
               '& "friends" </p><b>bold?</b>')
    folder = tmp_path / "tasks"
    [task] = small_tasks(folder, num_objects=1, captions=[caption])
    alice = Annotator(browser, start_server(folder), "alice")
    alice.wait(0, task.object_id)
    page = alice.page
    assert page.inner_text("#caption") == caption
    assert page.inner_text("#caption mark") == "red ellipse"
    assert page.locator("#caption *").count() == 1  # only the <mark> the page made
    assert page.evaluate("window.pwned") is None
    assert not alice.errors


def _raw_get(port, path, token):
    """A request sent byte for byte (clients would normalise ``..`` away before sending it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                           "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_paths_in_frame_requests_are_refused(browser, server, task_folder, tokens):
    task = read_tasks(task_folder)[0]
    alice = Annotator(browser, server, "alice")
    alice.wait(0)
    good = f"/api/objects/{task.object_id}/frames/000000/image"
    assert alice.context.request.get(server.url + good).status == 200  # the page's own cookie works
    attempts = [
        f"/api/objects/{task.object_id}/frames/../../../tasks.jsonl",
        f"/api/objects/{task.object_id}/frames/..%2F..%2F..%2Ftasks.jsonl/image",
        f"/api/objects/{task.object_id}/frames/%2e%2e%2f%2e%2e%2ftasks.jsonl/image",
        f"/api/objects/{task.object_id}/frames/%2Fetc%2Fpasswd/image",
        f"/api/objects/{task.object_id}/frames//etc/passwd/image",
        "/api/objects/..%2F..%2Ftasks.jsonl/frames/000000/image",
        "/api/objects/%2Fetc%2Fpasswd/frames/000000/image",
        f"/api/objects/{task.object_id}/frames/000000/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/static/..%2Fservice.py", "/static/%2Fetc%2Fpasswd", "/../../../../etc/passwd",
    ]
    for path in attempts:
        from_browser = alice.context.request.get(server.url + path)
        status, body = _raw_get(server.port, path, tokens["alice"])
        for code, text in ((from_browser.status, from_browser.body()), (status, body)):
            assert code in (400, 404), path
            assert b"root:" not in text and b"object_id" not in text and b"import" not in text, path
