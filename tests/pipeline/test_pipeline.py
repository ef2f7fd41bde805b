"""Stages 1-4 on hand-written narratives and small videos: a self-contained task folder whose candidates are never
verdicts, export → read round trip, resuming after a kill, and the command line."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from stories import FRAME_SIZE, NUM_FRAMES, actor, line, narrative, write_clip
from typer.testing import CliRunner

from vng.cli import app
from vng.io.common import FormatError
from vng.io.masks import read_mask_png, rle_decode, write_mask_png
from vng.io.pipeline import read_probabilities, read_traced_objects
from vng.io.pointvos import read_pv_annotations
from vng.io.tasks import read_tasks, write_verdicts
from vng.io.video import Video
from vng.io.vidln import write_narratives
from vng.methods import FlowMethod
from vng.pipeline.candidates import collect_tasks
from vng.pipeline.prepare import prepare
from vng.pipeline.release import export_release
from vng.pipeline.workdir import WorkDir, video_key
from vng.points import CandidateConfig, evenly_spaced_frames
from vng.segmenters import GrabCutSegmenter
from vng.types import CandidateKind, PointLabel, VerdictAction, VerdictEvent
from vng.verification import resolve_verdicts

CANDIDATES = CandidateConfig(min_distance=5.0)  # the paper's 20 px at 480p, on 48 px high frames


@pytest.fixture
def two_videos(tmp_path, kitchen):
    """Narratives of two videos that exist: the kitchen clip and a dog clip (the square is where the dog is)."""
    videos = tmp_path / "videos"
    write_clip(videos / "toy_train" / "clip.mp4")
    write_clip(videos / "dog.mp4", seed=1)
    dog = narrative(actor("Dog", "A dog runs to the right.", {"dog": [(1, line(20, 30, 24))]}), video_id="dog",
                    vidln_id=2)
    path = tmp_path / "narratives.jsonl"
    write_narratives(path, [kitchen, dog])
    return path, videos


def run(path, videos, workdir: WorkDir, method=None, **options):
    reports = prepare(path, videos, workdir, segmenter=GrabCutSegmenter(), method=method or FlowMethod(),
                      candidates=CANDIDATES, **options)
    collect_tasks(workdir)
    return reports


def test_prepare_writes_a_self_contained_task_folder_of_candidates(two_videos, tmp_path):
    path, videos = two_videos
    workdir = WorkDir(tmp_path / "work")
    reports = run(path, videos, workdir, overlays=tmp_path / "overlays")
    assert [r.stage for r in reports] == ["objects", "trace-masks", "propagate", "candidates"]
    assert [r.videos_done for r in reports] == [2, 2, 2, 2] and not any(r.problems for r in reports)
    tasks = read_tasks(workdir.tasks_dir)
    objects = {obj.object_id: obj for key in workdir.keys() for obj in read_traced_objects(workdir.objects_file(key))}
    assert len(objects) == 4 and len(tasks) == reports[3].objects == reports[2].objects > 0
    for task in tasks:
        obj = objects[task.object_id]
        assert (task.video_name, task.object_name, task.question, task.noun_span) == (
            obj.video_name, obj.object_name, obj.question, obj.noun_span)
        assert [f.frame_index for f in task.frames] == evenly_spaced_frames(NUM_FRAMES, 10)
        # every file the tool shows is in the folder: JPEG frames at the video's size, 0/1 masks, the trace
        for frame in (task.keyframe, *task.frames):
            with Image.open(workdir.tasks_dir / frame.image) as image:
                assert image.format == "JPEG" and image.size == FRAME_SIZE
            mask = read_mask_png(workdir.tasks_dir / frame.mask)
            assert mask.shape == FRAME_SIZE[::-1] and set(np.unique(mask)) <= {0, 1}
        np.testing.assert_array_equal(read_mask_png(workdir.tasks_dir / task.keyframe.mask), rle_decode(obj.trace))
        assert task.keyframe.frame_index == obj.keyframe
        orders = [c.verification_order for c in task.candidates]
        assert orders == sorted(orders) and task.candidates[0].kind is CandidateKind.FOREGROUND
        assert (workdir.root.parent / "overlays" / "candidates" / video_key(task.video_name)
                / f"{task.object_id}.png").is_file()
    # only the sampling frames' maps are stored
    stored = read_probabilities(workdir.probabilities_file(video_key("clip")))
    assert {p.frames for p in stored} == {tuple(evenly_spaced_frames(NUM_FRAMES, 10))}
    # a rerun finds everything done and changes nothing
    before = (workdir.tasks_dir / "tasks.jsonl").read_bytes()
    again = run(path, videos, workdir)
    assert [r.videos_kept for r in again] == [2, 2, 2, 2] and [r.videos_done for r in again] == [0, 0, 0, 0]
    assert (workdir.tasks_dir / "tasks.jsonl").read_bytes() == before


def test_candidates_are_never_verdicts(two_videos, tmp_path):
    path, videos = two_videos
    workdir = WorkDir(tmp_path / "work")
    run(path, videos, workdir)
    text = (workdir.tasks_dir / "tasks.jsonl").read_text()
    assert not any(status in text for status in ("ACCEPTED", "REJECTED", "AMBIGUOUS", "status"))
    with pytest.raises(FormatError):
        read_pv_annotations(workdir.tasks_dir / "tasks.jsonl")
    # nothing is released without verdicts: an empty log gives an empty release
    tasks = read_tasks(workdir.tasks_dir)
    result = resolve_verdicts(tasks, [])
    assert result.objects == () and len(result.unfinished) == len(tasks)
    write_verdicts(tmp_path / "none.jsonl", [])
    release = export_release(workdir, tmp_path / "none.jsonl", tmp_path / "release")
    assert [read_pv_annotations(path) for path in release.files] == [[] for _ in release.files]


def test_export_then_read_gives_the_verdicts_back(two_videos, tmp_path):
    path, videos = two_videos
    workdir = WorkDir(tmp_path / "work")
    run(path, videos, workdir)
    tasks = read_tasks(workdir.tasks_dir)
    verdict = {CandidateKind.FOREGROUND: PointLabel.FOREGROUND, CandidateKind.BACKGROUND: PointLabel.BACKGROUND,
               CandidateKind.UNCERTAIN: PointLabel.AMBIGUOUS}
    events = [VerdictEvent(f"{task.object_id}/{i}", task.object_id, "ana", VerdictAction.VERDICT, i,
                           verdict[c.kind], 1000 + i) for task in tasks[1:] for i, c in enumerate(task.candidates)]
    write_verdicts(tmp_path / "verdicts.jsonl", events)
    release = export_release(workdir, tmp_path / "verdicts.jsonl", tmp_path / "release", link_videos=True)
    result = release.resolved
    out, = release.files
    assert out == tmp_path / "release" / tasks[0].dataset / f"{tasks[0].split}.json"
    assert result.unfinished == (tasks[0].object_id,)
    back = read_pv_annotations(out)
    assert back == list(result.objects) and len(back) == len(tasks) - 1
    raw = json.loads(out.read_text())
    for task in tasks[1:]:
        record = raw[task.object_id]
        assert record["object_name"] == task.object_name and record["noun_span"] == list(task.noun_span)
        assert len(record["annotated_points"]) == len(task.candidates)
        for point, candidate in zip(sorted(record["annotated_points"], key=lambda p: (p["frame_id"], p["x"], p["y"])),
                                    sorted(task.candidates, key=lambda c: (c.frame_index, c.x, c.y))):
            assert point["frame_id"] == f"{candidate.frame_index:06d}"
            assert point["is_fg_candidate"] == (candidate.kind is CandidateKind.FOREGROUND)
            assert point["status"] == {CandidateKind.FOREGROUND: "ACCEPTED", CandidateKind.BACKGROUND: "REJECTED",
                                       CandidateKind.UNCERTAIN: "AMBIGUOUS"}[candidate.kind]
    # the videos are where the release expects them
    for obj in back:
        assert (out.parent / "videos" / "train" / f"{obj.video_name}.mp4").resolve().is_file()


_KILLED_RUN = """
import os, signal, sys
import vng.pipeline.propagation as propagation
from vng.io.common import atomic_write
from vng.methods import FlowMethod
from vng.points import CandidateConfig
from vng.pipeline.prepare import prepare
from vng.pipeline.workdir import WorkDir
from vng.segmenters import GrabCutSegmenter

written = []
real = propagation.write_probabilities

def killed_while_writing_the_second(path, objects):
    written.append(path)
    if len(written) == 2:
        with atomic_write(path, "wb") as handle:
            handle.write(b"half a file")
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    real(path, objects)

propagation.write_probabilities = killed_while_writing_the_second
prepare(sys.argv[1], sys.argv[2], WorkDir(sys.argv[3]), segmenter=GrabCutSegmenter(), method=FlowMethod(),
        candidates=CandidateConfig(min_distance=5.0))
"""


class _CountingFlow(FlowMethod):
    """The flow method, counting the videos it starts sessions on."""

    started: list = []

    def start(self, video):
        _CountingFlow.started.append(video.path)
        return super().start(video)


def test_a_killed_run_resumes_without_redoing_finished_videos(two_videos, tmp_path):
    path, videos = two_videos
    workdir = WorkDir(tmp_path / "work")
    killed = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(path), str(videos), str(workdir.root)],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    finished = [key for key in workdir.keys() if workdir.probabilities_file(key).is_file()]
    assert len(finished) == 1 and list(workdir.root.rglob(".*.tmp"))  # the kill left a partial file
    _CountingFlow.started.clear()
    reports = run(path, videos, workdir, method=_CountingFlow())
    assert [(r.videos_kept, r.videos_done) for r in reports] == [(2, 0), (2, 0), (1, 1), (0, 2)]
    assert len(_CountingFlow.started) == 1  # only the unfinished video was propagated
    assert not list(workdir.root.rglob(".*.tmp")) and not list(workdir.root.rglob(".frames"))
    straight = WorkDir(tmp_path / "straight")
    run(path, videos, straight)
    assert (workdir.tasks_dir / "tasks.jsonl").read_bytes() == (straight.tasks_dir / "tasks.jsonl").read_bytes()


def test_command_line_prepare_simulate_export(two_videos, tmp_path):
    path, videos = two_videos
    work = tmp_path / "work"
    result = CliRunner().invoke(app, ["annotate", "prepare", str(path), "--videos", str(videos), "--out", str(work),
                                      "--backend", "grabcut", "--method", "flow", "--min-distance", "5"])
    assert result.exit_code == 0, result.output
    assert "candidates" in result.output and "objects/min" in result.output
    summary = json.loads((work / "summary.json").read_text())
    assert [stage["stage"] for stage in summary["stages"]] == ["objects", "trace-masks", "propagate", "candidates"]
    # dense "masks": the bright square of both clips
    for name, clip in (("clip", videos / "toy_train" / "clip.mp4"), ("dog", videos / "dog.mp4")):
        for index, frame in enumerate(Video.open(clip)):
            write_mask_png(tmp_path / "masks" / name / f"{index:05d}.png", (frame.mean(-1) > 150).astype(np.uint8))
    result = CliRunner().invoke(app, ["annotate", "simulate", str(work), "--masks", str(tmp_path / "masks")])
    assert result.exit_code == 0, result.output
    assert "foreground" in result.output and (work / "verdicts.jsonl").is_file()
    result = CliRunner().invoke(app, ["annotate", "export", str(work), "--verdicts", str(work / "verdicts.jsonl"),
                                      "--out", str(tmp_path / "release")])
    assert result.exit_code == 0, result.output
    released = [obj for path in (tmp_path / "release").glob("*/*.json*") for obj in read_pv_annotations(path)]
    assert released and "objects released" in result.output
    # the dog's trace lies on the square: it is released, its foreground candidates judged against the square
    assert any(obj.object_name == "dog" for obj in released)
    # the release root may not be the work folder or a file; a stage rerun with other settings is refused
    for out in (work, work / "verdicts.jsonl"):
        bad = CliRunner().invoke(app, ["annotate", "export", str(work), "--verdicts", str(work / "verdicts.jsonl"),
                                       "--out", str(out)])
        assert bad.exit_code == 2 and "error:" in bad.output
    bad = CliRunner().invoke(app, ["annotate", "candidates", str(work), "--min-distance", "7"])
    assert bad.exit_code == 2 and "other settings" in bad.output and "min_distance" in bad.output


def test_accelerate_launch_splits_the_videos_over_processes(two_videos, tmp_path):
    accelerate = Path(sys.executable).parent / "accelerate"
    if not accelerate.is_file():
        pytest.skip("no accelerate launcher next to this Python")
    path, videos = two_videos
    arguments = ["annotate", "prepare", str(path), "--videos", str(videos), "--backend", "grabcut", "--method", "flow",
                 "--min-distance", "5", "--out"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_CONFIG_FILE": str(tmp_path / "none.yaml")}
    launched = subprocess.run([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--mixed_precision",
                               "no", "--num_machines", "1", "--dynamo_backend", "no", "-m", "vng.cli", *arguments,
                               str(tmp_path / "work")], capture_output=True, text=True, timeout=600, env=environment)
    assert launched.returncode == 0, launched.stdout[-2000:] + launched.stderr[-2000:]
    shares = [json.loads((tmp_path / "work" / f"summary.{i}-of-2.json").read_text()) for i in range(2)]
    assert sum(share["stages"][0]["videos_done"] for share in shares) == 2  # each video by one process
    single = CliRunner().invoke(app, [*arguments, str(tmp_path / "single")])
    assert single.exit_code == 0, single.output
    assert ((tmp_path / "work" / "tasks" / "tasks.jsonl").read_bytes()
            == (tmp_path / "single" / "tasks" / "tasks.jsonl").read_bytes())


def test_the_verification_tool_serves_every_file_of_the_task_folder(two_videos, tmp_path):
    images = pytest.importorskip("annotation.images")  # the tool's extra (FastAPI) may be missing
    path, videos = two_videos
    workdir = WorkDir(tmp_path / "work")
    run(path, videos, workdir)
    tasks = {task.object_id: task for task in read_tasks(workdir.tasks_dir)}
    files = images.TaskFiles(workdir.tasks_dir, tasks)
    for task in tasks.values():
        keyframe = f"{task.keyframe.frame_index:06d}"
        assert files.image(task.object_id, keyframe)[1] == "image/jpeg"
        assert files.overlay(task.object_id, keyframe, "trace").startswith(b"\x89PNG")
        for frame in task.frames:
            assert files.image(task.object_id, f"{frame.frame_index:06d}")[0].is_file()
            assert files.overlay(task.object_id, f"{frame.frame_index:06d}", "mask").startswith(b"\x89PNG")
