"use strict";
// The verification page (annotation/README.md): one candidate at a time, answered with a key or a button.
// Every answer is stored by the server before the next candidate shows, and resent with the same event id until it
// is, so a slow, killed or restarted server neither loses nor doubles an answer. Text from the server is only ever
// put into textContent, never parsed as HTML.

const KEYS = {
  a: "accept", 1: "accept", r: "reject", 2: "reject", d: "ambiguous", 3: "ambiguous",
  u: "undo", backspace: "undo", m: "overlay", s: "skip", enter: "next", n: "next",
};
const STATUS = { accept: "ACCEPTED", reject: "REJECTED", ambiguous: "AMBIGUOUS" };
const KIND_TEXT = { foreground: "Proposed: the object", background: "Proposed: background", uncertain: "Uncertain" };
const EMPTY_POLL_MS = 30000; // when nothing is left, ask again: objects come back when their holders leave

const $ = (id) => document.getElementById(id);
const view = {
  task: null, state: null, mode: "loading", busy: false, shownAt: 0, overlay: true,
  kinds: [], // per candidate: [index within its kind, size of its kind]
  preloaded: [], // Image objects kept so the browser keeps the object's frames ready
};

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function newEventId() {
  // crypto.randomUUID needs a secure context, which a team server on http://<host> is not; this works everywhere.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function describe(detail) {
  if (Array.isArray(detail)) return detail.map((item) => item.msg || JSON.stringify(item)).join("; ");
  return String(detail);
}

async function request(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options); // a TypeError when the server cannot be reached
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data.detail ? describe(data.detail) : response.statusText);
  return data;
}

// A request that must get through: resent (same body, so the same event id) while the server is unreachable or
// failing; a refusal (4xx) is final, as resending it would change nothing.
async function send(method, path, body) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const data = await request(method, path, body);
      if (attempt > 0) showStatus("");
      return data;
    } catch (error) {
      if (error instanceof ApiError && error.status < 500) throw error;
      showStatus(`Not saved yet: the server does not answer. Retrying (${attempt + 1})…`, true);
      await sleep(Math.min(4000, 250 * 2 ** attempt));
    }
  }
}

function showStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.hidden = !text;
  status.classList.toggle("error", isError);
}

function setMode(mode) {
  view.mode = mode;
  document.body.dataset.state = mode;
  $("work").hidden = !["candidate", "done", "confirm-skip"].includes(mode);
  $("done").hidden = mode !== "done";
  $("empty").hidden = mode !== "empty";
  $("confirm-skip").hidden = mode !== "confirm-skip";
}

function fail(error) {
  setMode("error");
  showStatus(error.status === 401
    ? "This page needs your token: open the link the server printed for you (…/login?token=…)."
    : `Error: ${error.message}`, true);
}

// --- rendering ------------------------------------------------------------------------------------------------

function renderCaption(text, span) {
  const caption = $("caption");
  caption.replaceChildren();
  // noun_span counts characters (code points), as Python does; JavaScript strings count UTF-16 units.
  const chars = Array.from(text);
  if (!span) {
    caption.textContent = text;
    return;
  }
  const mark = document.createElement("mark");
  mark.textContent = chars.slice(span[0], span[1]).join("");
  caption.append(chars.slice(0, span[0]).join(""), mark, chars.slice(span[1]).join(""));
}

function renderOverall(progress) {
  $("overall").textContent = `Objects done ${progress.released} of ${progress.objects} · you: `
    + `${progress.finished_by_you} finished, ${progress.skipped_by_you} skipped`;
}

function prepareTask(task) {
  view.task = task;
  renderCaption(task.question, task.noun_span);
  $("noun").textContent = task.object_name;
  // The frame fills the stage's width, or the window's height when that is the tighter bound, whatever its size in
  // pixels (the sample data's are 160x128): the marker and overlay are placed in percent of this box.
  const [width, height] = task.frame_size;
  $("frame-box").style.aspectRatio = `${width} / ${height}`;
  $("frame-box").style.width = `min(100%, calc((100vh - 11rem) * ${width / height}))`;
  $("keyframe").src = task.keyframe.image;
  $("keyframe-trace").hidden = !task.keyframe.trace;
  if (task.keyframe.trace) $("keyframe-trace").src = task.keyframe.trace;
  view.frames = new Map(task.frames.map((frame) => [frame.frame_id, frame]));
  view.preloaded = task.frames.flatMap((frame) => [frame.image, frame.mask].filter(Boolean)).map((url) => {
    const image = new Image();
    image.src = url;
    return image;
  });
  const sizes = {};
  view.kinds = task.candidates.map((candidate) => {
    sizes[candidate.kind] = (sizes[candidate.kind] || 0) + 1;
    return [sizes[candidate.kind] - 1, candidate.kind];
  }).map(([index, kind]) => [index, sizes[kind]]);
  $("frame").dataset.frame = "";
}

function drawZoom(candidate, frameImage, maskImage) {
  const canvas = $("zoom");
  const context = canvas.getContext("2d");
  const [width, height] = view.task.frame_size;
  // A square of 1/8 of the frame's shorter side (90 px at 720p) around the candidate, clamped to the frame.
  const side = Math.min(width, height, Math.max(24, Math.round(Math.min(width, height) / 8)));
  const left = Math.min(Math.max(candidate.x + 0.5 - side / 2, 0), width - side);
  const top = Math.min(Math.max(candidate.y + 0.5 - side / 2, 0), height - side);
  const scale = canvas.width / side;
  context.imageSmoothingEnabled = false; // pixels as they are: the edge is what is being judged
  context.clearRect(0, 0, canvas.width, canvas.height);
  for (const image of [frameImage, view.overlay ? maskImage : null]) {
    if (!image || !image.complete || !image.naturalWidth) continue;
    const sx = image.naturalWidth / width;
    const sy = image.naturalHeight / height;
    context.drawImage(image, left * sx, top * sy, side * sx, side * sy, 0, 0, canvas.width, canvas.height);
  }
  const cx = (candidate.x + 0.5 - left) * scale;
  const cy = (candidate.y + 0.5 - top) * scale;
  const radius = Math.max(6, scale * 1.5);
  for (const [colour, lineWidth] of [["#000", 4], ["#fff", 2]]) {
    context.strokeStyle = colour;
    context.lineWidth = lineWidth;
    context.beginPath();
    context.arc(cx, cy, radius, 0, 2 * Math.PI);
    for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) {
      context.moveTo(cx + dx * (radius + 3), cy + dy * (radius + 3));
      context.lineTo(cx + dx * (radius + 12), cy + dy * (radius + 12));
    }
    context.stroke();
  }
}

function drawCurrentZoom() {
  const candidate = view.task.candidates[view.state.position];
  drawZoom(candidate, $("frame"), view.frames.get(candidate.frame_id).mask ? $("frame-mask") : null);
}

function renderObjectProgress() {
  const state = view.state;
  $("object-bar").style.width = `${(100 * state.judged) / Math.max(1, state.num_candidates)}%`;
  if (state.position === null) {
    $("position").textContent = `All ${state.num_candidates} candidates judged`;
    return;
  }
  const [index, size] = view.kinds[state.position];
  $("position").textContent = `Candidate ${state.position + 1} of ${state.num_candidates} `
    + `(${index + 1} of ${size} of this kind)`;
}

async function show() {
  const state = view.state;
  document.body.dataset.object = view.task.object_id;
  document.body.dataset.position = state.position === null ? "done" : String(state.position);
  renderObjectProgress();
  if (state.position === null) {
    $("done-text").textContent = `Every candidate of “${view.task.object_name}” has your answer.`;
    setMode("done");
    request("GET", "/api/progress").then(renderOverall, () => {});
    return;
  }
  const candidate = view.task.candidates[state.position];
  const frame = view.frames.get(candidate.frame_id);
  const frameImage = $("frame");
  const maskImage = $("frame-mask");
  if (frameImage.dataset.frame !== candidate.frame_id) {
    frameImage.dataset.frame = candidate.frame_id;
    frameImage.src = frame.image;
    maskImage.hidden = !frame.mask;
    if (frame.mask) maskImage.src = frame.mask;
  }
  await Promise.all([frameImage, maskImage].map((image) => image.decode().catch(() => {})));
  const [width, height] = view.task.frame_size;
  $("marker").style.left = `${(100 * (candidate.x + 0.5)) / width}%`;
  $("marker").style.top = `${(100 * (candidate.y + 0.5)) / height}%`;
  const kind = $("kind");
  kind.className = `kind ${candidate.kind}`;
  kind.textContent = KIND_TEXT[candidate.kind] || candidate.kind;
  drawCurrentZoom();
  setMode("candidate");
  view.shownAt = performance.now(); // the answer's duration counts from here: the candidate is on screen
  if (!document.body.dataset.firstCandidateMs) document.body.dataset.firstCandidateMs = String(view.shownAt);
}

async function load(assignment) {
  renderOverall(assignment.progress);
  if (!assignment.task) {
    view.task = null;
    setMode("empty");
    return;
  }
  if (!view.task || view.task.object_id !== assignment.task.object_id) prepareTask(assignment.task);
  view.state = assignment.state;
  await show();
}

// --- actions --------------------------------------------------------------------------------------------------

async function guarded(work) {
  if (view.busy) return; // one request at a time: a key pressed meanwhile did not see the next candidate
  view.busy = true;
  document.body.dataset.busy = "1";
  try {
    await work();
  } catch (error) {
    if (error.status === 401) {
      fail(error);
    } else {
      // A refusal means this page is stale (another tab, a lost lease): say why and take the server's view.
      showStatus(error.message, true);
      try {
        await load(await send("POST", "/api/claim"));
      } catch (again) {
        fail(again);
      }
    }
  } finally {
    view.busy = false;
    document.body.dataset.busy = "0";
  }
}

async function record(fields) {
  const result = await send("POST", "/api/events", { event_id: newEventId(), object_id: view.task.object_id, ...fields });
  view.state = result.state;
  showStatus("");
  if (!result.state.skipped) await show();
}

function act(action) {
  const mode = view.mode;
  if (action === "overlay" && (mode === "candidate" || mode === "done")) {
    view.overlay = !view.overlay;
    document.body.classList.toggle("no-overlay", !view.overlay);
    if (mode === "candidate") drawCurrentZoom(); // not show(): looking at the overlay is part of the answer's time
    return;
  }
  if (mode === "candidate" && action in STATUS) {
    const duration = Math.round(performance.now() - view.shownAt);
    guarded(() => record({ action: "verdict", candidate: view.state.position, status: STATUS[action],
                           duration_ms: duration }));
  } else if ((mode === "candidate" || mode === "done") && action === "undo") {
    if (view.state.last === null) showStatus("Nothing to undo on this object.");
    else guarded(() => record({ action: "undo", candidate: view.state.last }));
  } else if (mode === "candidate" && action === "skip") {
    setMode("confirm-skip");
  } else if (mode === "done" && action === "next") {
    guarded(async () => load(await send("POST", "/api/next")));
  }
}

function confirmSkip(yes) {
  if (!yes) {
    setMode("candidate");
    return;
  }
  guarded(async () => {
    await record({ action: "skip" });
    await load(await send("POST", "/api/next"));
  });
}

function onKey(event) {
  const key = event.key.toLowerCase();
  if ((event.ctrlKey || event.metaKey) && key === "z") {
    event.preventDefault();
    act("undo");
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  // Enter / Space on a focused button is that button's click; handling the key too would act twice.
  if (event.target instanceof HTMLButtonElement && (key === "enter" || key === " ")) return;
  if (event.repeat) { // a held key must not answer a run of candidates unseen
    event.preventDefault();
    return;
  }
  if (view.mode === "confirm-skip") {
    if (key === "enter" || key === "escape") {
      event.preventDefault();
      confirmSkip(key === "enter");
    }
    return;
  }
  const action = KEYS[key];
  if (!action) return;
  event.preventDefault();
  act(action);
}

async function exportRelease() {
  try {
    const result = await request("POST", "/api/export");
    const agreement = Object.entries(result.agreement).map(([kind, share]) => `${kind} ${(100 * share).toFixed(1)}%`);
    showStatus(`Exported to ${result.folder}: ${result.released} objects released, ${result.unfinished} unfinished, `
      + `${result.skipped} skipped${agreement.length ? `; agreement ${agreement.join(", ")}` : ""}.`);
  } catch (error) {
    showStatus(`Export failed: ${error.message}`, true);
  }
}

function heartbeat() {
  if (!view.task || view.busy) return;
  request("POST", "/api/heartbeat", { object_id: view.task.object_id }).catch((error) => {
    if (error.status === 409) guarded(async () => load(await send("POST", "/api/claim")));
  });
}

function release() {
  // keepalive: the request outlives the page; the server keeps the object for a few seconds in case of a reload.
  if (!view.task) return;
  fetch("/api/release", { method: "POST", keepalive: true, credentials: "same-origin",
                          headers: { "Content-Type": "application/json" },
                          body: JSON.stringify({ object_id: view.task.object_id }) }).catch(() => {});
}

async function start() {
  document.addEventListener("keydown", onKey);
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => {
      button.blur(); // keys keep working after a click
      act(button.dataset.action);
    });
  }
  $("next").addEventListener("click", () => act("next"));
  $("export").addEventListener("click", exportRelease);
  window.addEventListener("pagehide", release);
  let session;
  try {
    session = await send("GET", "/api/session");
  } catch (error) {
    fail(error);
    return;
  }
  $("annotator").textContent = `Annotator: ${session.annotator}`;
  setInterval(heartbeat, session.heartbeat_seconds * 1000);
  setInterval(() => {
    if (view.mode === "empty") guarded(async () => load(await send("POST", "/api/claim")));
  }, EMPTY_POLL_MS);
  await guarded(async () => load(await send("POST", "/api/claim")));
}

start();
