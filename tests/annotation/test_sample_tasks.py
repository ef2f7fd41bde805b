"""Task folders made from synthetic frames and from the sample data, and the command line around a campaign."""

import json
from dataclasses import replace

import pytest

from annotation.cli import build_parser, main
from annotation.sample_tasks import sample_data_tasks
from annotation.service import VerificationService
from annotation.store import Store
from vng.datasets.synthetic import SampleDataConfig, generate_sample_data
from vng.io.masks import read_mask_png
from vng.io.pointvos import LABEL_TO_STATUS, read_pv_annotations
from vng.io.tasks import read_tasks, write_tasks
from vng.types import CandidateKind
from vng.verification import simulate_verdicts


def test_synthetic_tasks_read_back_with_every_file_they_name(task_folder):
    tasks = read_tasks(task_folder)
    assert len(tasks) == 3 and len({task.object_id for task in tasks}) == 3
    for task in tasks:
        assert task.question[slice(*task.noun_span)] == task.object_name
        assert len(task.frames) == 3 and len(task.candidates) == 15
        assert [c.kind for c in task.candidates] == [CandidateKind.FOREGROUND] * 6 + [CandidateKind.BACKGROUND] * 6 + [
            CandidateKind.UNCERTAIN] * 3
        for frame in task.frames:
            assert (task_folder / frame.image).is_file()
            mask = read_mask_png(task_folder / frame.mask) > 0
            assert mask.shape == (task.frame_size[1], task.frame_size[0])
            foreground = [c for c in task.candidates
                          if c.frame_index == frame.frame_index and c.kind is CandidateKind.FOREGROUND]
            assert all(mask[c.y, c.x] for c in foreground)  # foreground candidates lie inside the rough mask
        assert (read_mask_png(task_folder / task.keyframe.mask) > 0).any()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    generate_sample_data(root, seed=0, config=SampleDataConfig(num_train_videos=1, num_val_videos=1,
                                                               num_kinetics_videos=1, num_png_images=1))
    return root


def test_every_candidate_of_the_sample_data_can_be_verified_and_exported(sample, tmp_path, capsys):
    folder = tmp_path / "tasks"
    tasks = sample_data_tasks(sample, folder)
    release = read_pv_annotations(sample / "Oops" / "train.json")
    assert [task.object_id for task in tasks] == [obj.object_id for obj in release]
    assert read_tasks(folder) == tasks
    # A simulated annotator answers every candidate through the service, judging by the sample's pseudo-masks.
    db = tmp_path / "verdicts.sqlite"
    store = Store(db, exclusive=True)
    service = VerificationService(tasks, store)
    expected = {}
    for _ in tasks:
        task = service.next("sim").task
        masks = {frame.frame_index: read_mask_png(folder / frame.mask) > 0 for frame in task.frames}
        for event in simulate_verdicts(task, masks, annotator="sim"):
            service.record("sim", event_id=f"e{len(expected):07d}", object_id=task.object_id, action=event.action,
                           candidate=event.candidate, label=event.label, duration_ms=1000)
            candidate = task.candidates[event.candidate]
            expected[(task.object_id, candidate.frame_index, candidate.x, candidate.y)] = LABEL_TO_STATUS[event.label]
    assert service.next("sim").task is None  # nothing left
    store.close()

    main(["status", str(folder), "--db", str(db)])
    assert f"{len(tasks)} objects released" in capsys.readouterr().out
    main(["export", str(folder), "--db", str(db), "--out", str(tmp_path / "export")])
    exported = read_pv_annotations(tmp_path / "export" / "Oops" / "train.json")
    got = {(obj.object_id, frame.frame_index, int(x), int(y)): LABEL_TO_STATUS[int(label)]
           for obj in exported for frame in obj.frames
           for (x, y), label in zip(frame.points.xy, frame.points.labels, strict=True)}
    assert got == expected
    by_id = {obj.object_id: obj for obj in release}
    for obj in exported:
        assert (obj.question, obj.object_name, obj.noun_span) == (by_id[obj.object_id].question,
                                                                  by_id[obj.object_id].object_name,
                                                                  by_id[obj.object_id].noun_span)
    summary = json.loads((tmp_path / "export" / "summary.json").read_text())
    assert summary["annotators"]["sim"]["seconds_per_point"] == 1.0


def test_kinetics_tasks_export_as_jsonl(sample, tmp_path):
    folder = tmp_path / "tasks"
    tasks = sample_data_tasks(sample, folder, dataset="Kinetics")
    assert tasks and all(task.dataset == "Kinetics" for task in tasks)
    Store(tmp_path / "verdicts.sqlite").close()
    oops = tmp_path / "oops_tasks"  # an earlier export of other tasks into the same folder
    sample_data_tasks(sample, oops)
    Store(tmp_path / "oops.sqlite").close()
    main(["export", str(oops), "--db", str(tmp_path / "oops.sqlite"), "--out", str(tmp_path / "export")])
    assert (tmp_path / "export" / "Oops" / "train.json").is_file()
    main(["export", str(folder), "--db", str(tmp_path / "verdicts.sqlite"), "--out", str(tmp_path / "export")])
    assert read_pv_annotations(tmp_path / "export" / "Kinetics" / "train.jsonl") == []  # nothing verified yet
    assert not (tmp_path / "export" / "Oops" / "train.json").exists()  # the other tasks' release is not kept


def test_the_server_listens_on_this_machine_only_unless_told(tmp_path):
    args = build_parser().parse_args(["serve", str(tmp_path), "--db", str(tmp_path / "verdicts.sqlite")])
    assert (args.host, args.port, args.per_object) == ("127.0.0.1", 8000, None)


def test_the_command_line_refuses_bad_input_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(tmp_path), "--db", str(tmp_path / "verdicts.sqlite"), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and "no such task file" in capsys.readouterr().err
    (tmp_path / "tasks.jsonl").write_text("")
    with pytest.raises(SystemExit):
        main(["status", str(tmp_path), "--db", str(tmp_path / "missing.sqlite")])
    assert "no verdict store" in capsys.readouterr().err


def test_export_and_status_refuse_tasks_whose_candidates_changed(sample, tmp_path, capsys):
    folder = tmp_path / "tasks"
    tasks = sample_data_tasks(sample, folder)
    db = tmp_path / "verdicts.sqlite"
    store = Store(db, exclusive=True)
    VerificationService(tasks, store)  # the server records each task's fingerprint
    store.close()
    # the first object loses its first candidate: every verdict would name the next point
    write_tasks(folder / "tasks.jsonl", [replace(tasks[0], candidates=tasks[0].candidates[1:]), *tasks[1:]])
    for command in (["export", "--out", str(tmp_path / "export")], ["status"]):
        with pytest.raises(SystemExit) as exit_info:
            main([command[0], str(folder), "--db", str(db), *command[1:]])
        assert exit_info.value.code == 2 and "other candidates" in capsys.readouterr().err
    assert not (tmp_path / "export").exists()


def test_sample_refuses_a_dataset_the_sample_data_does_not_have(sample, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", str(tmp_path / "tasks"), "--from-sample-data", str(sample), "--dataset", "Nope"])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "index.json" in error and "dataset_ids" in error and "Nope" in error
