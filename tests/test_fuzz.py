"""Fuzzing the readers and the command line with seeded mutations of the sample data's files (issue 11).

Each format's files are mutated — truncation, byte flips, a byte that is not UTF-8, a value of another type, NaN,
huge numbers, a duplicated record, deep nesting, a missing field; for images and videos: truncation, flipped
bytes, a zeroed block — and fed to each reader (``vng.io.*``) and to the commands that read them. Every outcome
must be a correct result or a clear error: a :class:`FormatError` from a reader; exit code 2 with ``error: ...``
and no traceback from a command. Inputs are never changed, and no output file is left partial (every JSON
parses, every PNG opens, no temporary file is left).

Every reader and command also runs once on the unmutated files first: those must read and exit 0. Not fuzzed:
``sample-data`` (it reads nothing), ``models fetch`` (the network) and ``ground`` (it needs a trained RF-VNG; its
video reading is the ``Video`` fuzzed here). The counts per reader and command are printed at the end
(``test_zz_counts``) and kept in ``COUNTS``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vng.cli import app
from vng.io import (coco_png, davis, masks, noun_objects, oops_qa, pipeline, pointvos, pv_extracted, tasks, vidln,
                    vng_format, ytvos)
from vng.io.common import FormatError, ReadReport
from vng.io.video import Video
from vng.types import Candidate, CandidateKind, TaskFrame, VerdictAction, VerdictEvent, VerificationTask

SEED = 0
MUTATIONS_PER_READER = 24
MUTATIONS_PER_COMMAND = 8
COUNTS: Counter = Counter()  # (target, "result" | "error") → count


# --- mutations -------------------------------------------------------------------------------------------------------

def _leaves(value, path=()):
    """Paths to every value inside parsed JSON (containers included), for structural mutations."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))


def _replace(value, path, new):
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replace(value[head], rest, new)
    return copy


def _remove(value, path):
    if len(path) == 1:
        copy = dict(value) if isinstance(value, dict) else list(value)
        del copy[path[0]]
        return copy
    return _replace(value, path[:1], _remove(value[path[0]], path[1:]))


def _structural(text: str, rng: np.random.Generator) -> str:
    """Change one value of a JSON text: its type, NaN, a huge number, deep nesting, or remove it (a missing field)."""
    data = json.loads(text)
    paths = [path for path in _leaves(data) if path]
    if not paths:
        return text + "x"
    path = paths[int(rng.integers(len(paths)))]
    kind = ["type", "nan", "huge", "negative", "deep", "missing"][int(rng.integers(6))]
    if kind == "missing":
        return json.dumps(_remove(data, path))
    raw = {"deep": "[" * 3000 + "]" * 3000, "huge": ["1" + "0" * 30, "1e999", "9" * 5000][int(rng.integers(3))],
           "nan": ["NaN", "Infinity", "-Infinity"][int(rng.integers(3))]}.get(kind)
    if raw is not None:  # written as text: json.dumps cannot make these
        marker = "\u0000MARK\u0000"
        return json.dumps(_replace(data, path, marker)).replace(json.dumps(marker), raw)
    new = {"type": ["a string", 3, 2.5, None, True, [1], {"k": 1}][int(rng.integers(7))], "negative": -7}[kind]
    return json.dumps(_replace(data, path, new))


def mutate_json(data: bytes, rng: np.random.Generator, *, lines: bool) -> bytes:
    """One seeded mutation of a JSON (``lines``: JSONL) file."""
    kind = ["truncate", "flip", "not-utf8", "structure", "structure", "duplicate"][int(rng.integers(6))]
    if kind == "truncate":
        return data[:int(rng.integers(len(data)))]
    if kind == "flip":
        out = bytearray(data)
        for position in rng.integers(0, len(data), 3):
            out[position] ^= int(rng.integers(1, 256))
        return bytes(out)
    if kind == "not-utf8":
        position = int(rng.integers(len(data)))
        return data[:position] + b"\xff\xfe" + data[position:]
    if lines:
        rows = data.decode().splitlines()
        index = int(rng.integers(len(rows)))
        if kind == "duplicate":
            return "\n".join(rows + [rows[index]]).encode() + b"\n"
        rows[index] = _structural(rows[index], rng)
        return "\n".join(rows).encode() + b"\n"
    if kind == "duplicate":  # the first key of the top level object once more (json would keep only one)
        text = data.decode().rstrip()
        parsed = json.loads(text)
        if not isinstance(parsed, dict) or not parsed:
            return data + data
        key, value = next(iter(parsed.items()))
        return (text[:-1] + f", {json.dumps(key)}: {json.dumps(value)}}}").encode()
    return _structural(data.decode(), rng).encode()


def mutate_binary(data: bytes, rng: np.random.Generator) -> bytes:
    """One seeded mutation of an image or video file."""
    kind = int(rng.integers(4))
    if kind == 0:
        return data[:int(rng.integers(len(data)))]
    if kind == 1:
        out = bytearray(data)
        for position in rng.integers(0, len(data), 8):
            out[position] ^= int(rng.integers(1, 256))
        return bytes(out)
    if kind == 2:
        start = int(rng.integers(len(data) // 4, len(data) // 2))
        return data[:start] + bytes(len(data) // 5) + data[start + len(data) // 5:]
    return b"plain text, not an image\n"


def mutate(path: Path, rng: np.random.Generator) -> None:
    data = path.read_bytes()
    if path.suffix in (".json", ".jsonl", ".txt"):
        if path.suffix == ".txt":
            path.write_bytes(mutate_binary(data, rng) if rng.random() < 0.5 else data + b"\xff\n" + data)
        else:
            path.write_bytes(mutate_json(data, rng, lines=path.suffix == ".jsonl"))
    else:
        path.write_bytes(mutate_binary(data, rng))


def digest(root: Path) -> dict[str, str]:
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


# --- the files of every format ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def files(small_sample, tmp_path_factory) -> Path:
    """The sample data plus the formats it does not hold: point PNGs, noun objects, tasks and a verdict log."""
    from vng.io.noun_objects import write_noun_objects
    from vng.pipeline.noun_objects import localise_narratives

    root = tmp_path_factory.mktemp("fuzz_files")
    objects = pointvos.read_pv_annotations(small_sample / "Oops" / "val.json")
    pv_extracted.write_point_pngs(root / "Annotations", objects, {obj.object_id: (160, 128) for obj in objects})
    narratives = vidln.read_narratives(small_sample / "vidln" / "train.jsonl", frames_dir=small_sample / "frames")
    result = localise_narratives(narratives, source="noun_segments")
    write_noun_objects(root / "noun_objects.jsonl", result.localisations[:6], line_width=3)
    frames = tuple(TaskFrame(i, f"frames/{i:06d}.jpg", f"masks/{i:06d}.png") for i in (0, 5))
    task = VerificationTask("a" * 32, "train/v", "Oops", "train", "dog", "A dog runs.", "h", (2, 5), (64, 48),
                            TaskFrame(3, "frames/000003.jpg"), frames,
                            (Candidate(0, 10, 10, CandidateKind.FOREGROUND),
                             Candidate(5, 3, 4, CandidateKind.UNCERTAIN)))
    tasks.write_tasks(root / "tasks.jsonl", [task])
    tasks.write_verdicts(root / "verdicts.jsonl", [
        VerdictEvent("e1", "a" * 32, "ana", VerdictAction.VERDICT, 0, 1, 1000, 900),
        VerdictEvent("e2", "a" * 32, "ana", VerdictAction.UNDO, 0, None, 1001)])
    _pipeline_files(small_sample, root)
    return root


def _pipeline_files(sample: Path, root: Path) -> None:
    """The annotation pipeline's stage files of the sample's first train video, and Oops-QA questions made from its
    objects' traces."""
    from vng.methods import FlowMethod
    from vng.pipeline.prepare import prepare
    from vng.pipeline.workdir import WorkDir
    from vng.points import CandidateConfig
    from vng.segmenters import GrabCutSegmenter

    narratives = (sample / "vidln" / "train.jsonl").read_text().splitlines()
    (root / "narratives.jsonl").write_text(narratives[0] + "\n")
    workdir = WorkDir(root / "work")
    prepare(root / "narratives.jsonl", sample / "videos", workdir, segmenter=GrabCutSegmenter(), method=FlowMethod(),
            candidates=CandidateConfig(min_distance=5.0))
    key = workdir.keys()[0]
    for source in (workdir.objects_file(key), workdir.trace_masks_file(key), workdir.probabilities_file(key)):
        shutil.copy(source, root / source.name)
    objects = pipeline.read_traced_objects(root / "objects.jsonl")
    (root / "questions.json").write_text(json.dumps({f"train/{obj.video_name}": [
        {"question_hash": obj.object_id[:8], "question": f"Where is the {obj.object_name}?",
         "trace_frame": obj.keyframe, "trace": obj.trace}] for obj in objects[:2]}))


def _first(folder: Path, pattern: str) -> Path:
    return sorted(folder.glob(pattern))[0]


class Reader(NamedTuple):
    target: str  # the file to mutate, relative to the workspace
    build: Callable[[Path], None]  # writes the workspace
    read: Callable[[Path, ReadReport | None], object]  # reads it, with a report when ``skips``
    skips: bool = False  # takes a ReadReport: record-level faults are then skipped, file-level ones still raise


def _readers(sample: Path, files: Path) -> dict[str, Reader]:
    def copy(source: Path, target: str):
        def build(work: Path) -> None:
            (work / target).parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if source.is_dir() else shutil.copy)(source, work / target)
        return build

    def one_file(source: Path, read: Callable, *, skips: bool = True) -> Reader:
        """The common case: one file (its suffix kept: .json / .jsonl choose the format) and ``read(path)``."""
        target = f"file{source.suffix}"
        call = (lambda w, r: read(w / target, report=r)) if skips else (lambda w, r: read(w / target))
        return Reader(target, copy(source, target), call, skips)

    davis_seq = _first(sample / "DAVIS" / "JPEGImages" / "480p", "*").name
    yt_video = _first(sample / "YouTubeVOS" / "train" / "JPEGImages", "*").name
    yt_mask = _first(sample / "YouTubeVOS" / "train" / "Annotations" / yt_video, "*.png").name
    frame_folder = _first(sample / "frames" / "synthetic_train", "*")
    point_pngs = _first(files / "Annotations", "*").name
    vng = sample / "VNG" / "val"
    return {
        "vidln.read_narratives": one_file(sample / "vidln" / "train.jsonl",
                                          partial(vidln.read_narratives, frames_dir=sample / "frames")),
        "pointvos.read_pv_annotations .json": one_file(sample / "Oops" / "val.json", pointvos.read_pv_annotations),
        "pointvos.read_pv_annotations .jsonl": one_file(sample / "Kinetics" / "train.jsonl",
                                                        pointvos.read_pv_annotations),
        "pv_extracted.read_point_pngs": Reader(
            f"A/{point_pngs}/000000.png", copy(files / "Annotations", "A"),
            lambda w, r: pv_extracted.read_point_pngs(w / "A", report=r), True),
        "noun_objects.read_noun_objects": one_file(files / "noun_objects.jsonl", noun_objects.read_noun_objects),
        "vng_format.read_meta_expressions": one_file(vng / "meta_expressions.json", vng_format.read_meta_expressions),
        "vng_format.read_extra_masks": one_file(vng / "extra_masks.json", vng_format.read_extra_masks),
        "vng_format.read_vis_annotations": one_file(vng / "vis_annotations.json", vng_format.read_vis_annotations),
        "coco_png.read_png_narratives": one_file(sample / "COCO-PNG" / "png_coco_val2017.json",
                                                 coco_png.read_png_narratives),
        "coco_png.read_panoptic_annotations": one_file(sample / "COCO-PNG" / "panoptic_val2017.json",
                                                       coco_png.read_panoptic_annotations),
        "coco_png.read_panoptic_png": one_file(_first(sample / "COCO-PNG" / "panoptic_val2017", "*.png"),
                                               coco_png.read_panoptic_png, skips=False),
        "ytvos.read_ytvos_meta": one_file(sample / "YouTubeVOS" / "train" / "meta.json", ytvos.read_ytvos_meta),
        "ytvos.read_ytvos_masks": Reader(
            f"train/Annotations/{yt_video}/{yt_mask}",
            lambda w: [copy(sample / "YouTubeVOS" / "train" / kind / yt_video, f"train/{kind}/{yt_video}")(w)
                       for kind in ("JPEGImages", "Annotations")],
            lambda w, r: ytvos.read_ytvos_masks(w, "train", yt_video)),
        "davis.read_davis_split": Reader(
            "ImageSets/2017/val.txt",
            copy(sample / "DAVIS" / "ImageSets" / "2017" / "val.txt", "ImageSets/2017/val.txt"),
            lambda w, r: davis.read_davis_split(w, year="2017", split="val")),
        "davis.read_davis_masks": Reader(
            f"Annotations/480p/{davis_seq}/00003.png",
            lambda w: [copy(sample / "DAVIS" / kind / "480p" / davis_seq, f"{kind}/480p/{davis_seq}")(w)
                       for kind in ("JPEGImages", "Annotations")],
            lambda w, r: davis.read_davis_masks(w, davis_seq)),
        "masks.read_mask_png": one_file(_first(sample / "Oops" / "val_masks", "*/*.png"), masks.read_mask_png,
                                        skips=False),
        "tasks.read_tasks": one_file(files / "tasks.jsonl", tasks.read_tasks),
        "pipeline.read_traced_objects": one_file(files / "objects.jsonl", pipeline.read_traced_objects),
        "pipeline.read_trace_masks": one_file(files / "trace_masks.jsonl", pipeline.read_trace_masks),
        "pipeline.read_probabilities": one_file(files / "probabilities.npz", pipeline.read_probabilities,
                                                skips=False),
        "oops_qa.read_location_questions": one_file(files / "questions.json", oops_qa.read_location_questions),
        "tasks.read_verdicts": one_file(files / "verdicts.jsonl", tasks.read_verdicts),
        "video.Video (mp4)": one_file(_first(sample / "Oops" / "videos" / "val", "*.mp4"),
                                      lambda path: (len(Video.open(path)), list(Video.open(path))), skips=False),
        "video.Video (frame folder)": Reader(
            f"f/{_first(frame_folder, '*.jpg').name}", copy(frame_folder, "f"), lambda w, r: list(Video.open(w / "f"))),
    }


READERS = ["vidln.read_narratives", "pointvos.read_pv_annotations .json", "pointvos.read_pv_annotations .jsonl",
           "pv_extracted.read_point_pngs", "noun_objects.read_noun_objects", "vng_format.read_meta_expressions",
           "vng_format.read_extra_masks", "vng_format.read_vis_annotations", "coco_png.read_png_narratives",
           "coco_png.read_panoptic_annotations", "coco_png.read_panoptic_png", "ytvos.read_ytvos_meta",
           "ytvos.read_ytvos_masks", "davis.read_davis_split", "davis.read_davis_masks", "masks.read_mask_png",
           "tasks.read_tasks", "tasks.read_verdicts", "pipeline.read_traced_objects", "pipeline.read_trace_masks",
           "pipeline.read_probabilities", "oops_qa.read_location_questions", "video.Video (mp4)",
           "video.Video (frame folder)"]


@pytest.mark.parametrize("name", READERS)
def test_readers(name, small_sample, files, tmp_path):
    reader = _readers(small_sample, files)[name]
    rng = np.random.default_rng([SEED, READERS.index(name)])
    for number in range(MUTATIONS_PER_READER + 1):
        work = tmp_path / f"{number}"
        reader.build(work)
        if number:  # the first is the control: the file as the sample wrote it reads
            mutate(work / reader.target, rng)
        before = digest(work)
        try:
            result = reader.read(work, None)
            COUNTS[(name, "result")] += number > 0
            if not number:
                control = result
        except FormatError as error:
            assert number, f"the unmutated file is refused: {error}"
            assert str(error.location.path).startswith(str(work)), error  # located in the file read
            COUNTS[(name, "error")] += 1
        if reader.skips:
            report = ReadReport()
            try:
                kept = reader.read(work, report)
            except FormatError:  # a fault of the whole file (malformed JSON, a bad byte in a .json)
                pass
            else:
                if not number:
                    assert kept == control and not report.skipped  # a report changes nothing on good input
                elif isinstance(kept, (list, tuple, dict)) and isinstance(control, (list, tuple, dict)):
                    # skipping drops records, it never invents them (a duplicated line may come back once more)
                    assert len(kept) <= len(control) + 1, name
        assert digest(work) == before  # reading changes nothing


# --- the command line ------------------------------------------------------------------------------------------------

def _check_outputs(folder: Path) -> None:
    """Nothing partial: JSON parses, PNGs open, no temporary file is left."""
    for path in folder.rglob("*") if folder.is_dir() else []:
        assert not (path.name.startswith(".") and path.name.endswith(".tmp")), path
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".jsonl":
            for line in path.read_text().splitlines():
                json.loads(line)
        elif path.suffix == ".png":
            with Image.open(path) as image:
                image.load()


def _trim_pv(source: Path, target: Path, count: int) -> None:
    data = json.loads(source.read_text())
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(dict(list(data.items())[:count])))


COMMANDS = ["parse-narratives", "parse-narratives --skip-bad", "pseudo-masks", "simulate-points davis",
            "simulate-points ytvos", "evaluate", "benchmark", "segment", "annotate prepare", "annotate export"]


def _command(name: str, sample: Path, files: Path, work: Path, stcn: Path, number: int) -> tuple[Path, list]:
    """(the input file to mutate, the arguments) of run ``number`` of ``name`` in ``work``."""
    out = work / "out"
    if name.startswith("parse-narratives"):
        shutil.copy(sample / "vidln" / "val.jsonl", work / "n.jsonl")
        return work / "n.jsonl", ["parse-narratives", work / "n.jsonl", "--frames", sample / "frames", "--out",
                                  out / "o.jsonl", "--source", "noun_segments", *name.split()[1:]]
    if name == "pseudo-masks":
        (work / "Oops").mkdir()
        _trim_pv(sample / "Oops" / "val.json", work / "Oops" / "val.json", 1)
        (work / "Oops" / "videos").symlink_to(sample / "Oops" / "videos")
        return work / "Oops" / "val.json", ["pseudo-masks", "--annotations", work / "Oops" / "val.json", "--frames",
                                            work, "--out", out, "--backend", "grabcut"]
    if name == "annotate export":  # its verdict log, over one task
        from vng.io.tasks import write_tasks, write_verdicts
        from vng.types import Candidate, CandidateKind, TaskFrame, VerificationTask
        from vng.verification import simulate_verdicts

        frames = tuple(TaskFrame(i, f"frames/{i:06d}.jpg") for i in (0, 9))
        task = VerificationTask("f" * 32, "clip", "Oops", "train", "ball", "A ball rolls.", "", (2, 6), (40, 30),
                                frames[0], frames, (Candidate(0, 5, 5, CandidateKind.FOREGROUND),
                                                    Candidate(9, 30, 20, CandidateKind.BACKGROUND)))
        write_tasks(work / "w" / "tasks" / "tasks.jsonl", [task])
        truth = np.zeros((30, 40), bool)
        truth[:10, :10] = True
        write_verdicts(work / "verdicts.jsonl", simulate_verdicts(task, {0: truth, 9: truth}))
        return work / "verdicts.jsonl", ["annotate", "export", work / "w", "--verdicts", work / "verdicts.jsonl",
                                         "--out", out]
    davis_val = (sample / "DAVIS" / "ImageSets" / "2017" / "val.txt").read_text().split()[0]
    if name == "simulate-points davis":  # its split file or one of its masks
        shutil.copytree(sample / "DAVIS", work / "DAVIS")
        target = (work / "DAVIS" / "ImageSets" / "2017" / "val.txt" if number % 2
                  else work / "DAVIS" / "Annotations" / "480p" / davis_val / "00002.png")
        return target, ["simulate-points", "--dataset", "davis", "--root", work / "DAVIS", "--split", "val", "--out",
                        out / "pv.json"]
    if name == "simulate-points ytvos":
        shutil.copytree(sample / "YouTubeVOS", work / "YT")
        return work / "YT" / "valid" / "meta.json", ["simulate-points", "--dataset", "ytvos", "--root", work / "YT",
                                                     "--split", "valid", "--out", out / "pv.json"]
    if name == "evaluate":
        shutil.copytree(sample / "DAVIS" / "Annotations" / "480p", work / "pred")  # the ground truth as results
        return work / "pred" / davis_val / "00004.png", ["evaluate", "--gt", sample / "DAVIS", "--pred", work / "pred",
                                                      "--out", out, "--year", "2017", "--processes", "1"]
    if name == "benchmark":
        from vng.datasets.simulate import SimulationConfig, simulate_davis

        objects = simulate_davis(sample / "DAVIS", split="val", config=SimulationConfig(num_foreground=2))
        pointvos.write_pv_annotations(work / "points.json", objects)
        return work / "points.json", ["benchmark", "--method", "oracle", "--root", sample / "DAVIS", "--points",
                                      work / "points.json", "--out", out, "--settings", "1", "--processes", "1"]
    if name == "segment":
        shutil.copy(_first(sample / "Oops" / "videos" / "val", "*.mp4"), work / "v.mp4")
        return work / "v.mp4", ["segment", work / "v.mp4", "--points", "80,64,1", "--checkpoint", stcn, "--out", out,
                                "--device", "cpu", "--size", "32"]
    if name == "annotate prepare":  # its narratives or its video
        shutil.copy(files / "narratives.jsonl", work / "n.jsonl")
        video = json.loads((work / "n.jsonl").read_text())["video_id"]
        (work / "videos").mkdir()
        shutil.copy(sample / "videos" / "synthetic_train" / f"{video}.mp4", work / "videos" / f"{video}.mp4")
        target = work / "n.jsonl" if number % 2 else work / "videos" / f"{video}.mp4"
        return target, ["annotate", "prepare", work / "n.jsonl", "--videos", work / "videos", "--out", out,
                        "--backend", "grabcut", "--method", "flow", "--min-distance", "5"]
    raise KeyError(name)


@pytest.mark.parametrize("name", COMMANDS)
def test_commands(name, small_sample, files, stcn_checkpoint, tmp_path):
    rng = np.random.default_rng([SEED, 100 + COMMANDS.index(name)])
    runner = CliRunner()
    for number in range(MUTATIONS_PER_COMMAND + 1):
        work = tmp_path / f"{number}"
        work.mkdir()
        target, arguments = _command(name, small_sample, files, work, stcn_checkpoint, number)
        if number:  # the first is the control: the command runs on the files as the sample wrote them
            mutate(target, rng)
        before = digest(target)
        result = runner.invoke(app, [str(argument) for argument in arguments])
        assert result.exit_code in (0, 2) and (number or result.exit_code == 0), (arguments, result.output,
                                                                                  result.exception)
        assert "Traceback" not in result.output and (result.exception is None
                                                     or isinstance(result.exception, SystemExit)), result.output
        if result.exit_code == 2:
            assert "error:" in result.output, result.output
        COUNTS[(name, "result" if result.exit_code == 0 else "error")] += number > 0
        assert digest(target) == before  # the input is untouched
        _check_outputs(work / "out")


def test_zz_counts(capsys):
    """The counts per reader and command (printed with the test output), and that every mutation of each ended in
    one of the two (only when the whole file ran: a selection has nothing to count)."""
    if not COUNTS:
        pytest.skip("run the whole file for the counts")
    targets = list(dict.fromkeys(target for target, _ in COUNTS))
    lines = [f"{'reader / command':<40} {'result':>6} {'error':>6}"]
    lines += [f"{target:<40} {COUNTS[(target, 'result')]:>6} {COUNTS[(target, 'error')]:>6}" for target in targets]
    lines.append(f"{'total':<40} {sum(v for (_, k), v in COUNTS.items() if k == 'result'):>6} "
                 f"{sum(v for (_, k), v in COUNTS.items() if k == 'error'):>6}")
    with capsys.disabled():
        print("\nfuzz outcomes (correct result / clear error):\n" + "\n".join(lines))
    for target in targets:  # every mutation ended in one of the two
        expected = MUTATIONS_PER_READER if target in READERS else MUTATIONS_PER_COMMAND
        assert COUNTS[(target, "result")] + COUNTS[(target, "error")] == expected, target
