"""A work folder holds one run: a stage asked to run with other settings is refused, or told to overwrite."""

import json

import pytest

from vng.io.common import FormatError
from vng.io.outputs import OutputConflict
from vng.methods.sam_propagator import SamPropagator, SamPropagatorConfig
from vng.segmenters.grabcut import GrabCutSegmenter
from vng.pipeline.workdir import WorkDir
from vng.points import CandidateConfig


def results_of_every_stage(workdir: WorkDir) -> None:
    for key in ("a", "b"):
        for path in (workdir.objects_file(key), workdir.trace_masks_file(key), workdir.probabilities_file(key),
                     workdir.tasks_part(key), workdir.video_task_dir(key) / "frames" / "000000.jpg"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x")


def test_a_stage_with_other_settings_is_refused_or_redone(tmp_path):
    workdir = WorkDir(tmp_path)
    workdir.begin_stage("propagate", {"method": "flow", "num_frames": 10})
    results_of_every_stage(workdir)
    workdir.begin_stage("propagate", {"method": "flow", "num_frames": 10})  # the same run resumes
    with pytest.raises(OutputConflict, match=r"'propagate'.*num_frames: 10 → 5"):
        workdir.begin_stage("propagate", {"method": "flow", "num_frames": 5})
    assert workdir.probabilities_file("a").is_file()  # refused: nothing deleted
    # overwrite in process 0 of 2: its share loses this stage's and the later stages' results, nothing else
    from vng.pipeline.workdir import shard_of

    mine = [key for key in ("a", "b") if shard_of(key, 2) == 0]
    workdir.begin_stage("propagate", {"method": "flow", "num_frames": 5}, overwrite=True, process_index=0,
                        num_processes=2)
    for key in ("a", "b"):
        cleared = key in mine
        assert workdir.objects_file(key).is_file() and workdir.trace_masks_file(key).is_file()
        assert workdir.probabilities_file(key).is_file() != cleared
        assert workdir.tasks_part(key).is_file() != cleared and workdir.video_task_dir(key).is_dir() != cleared
    workdir.begin_stage("propagate", {"method": "flow", "num_frames": 5})  # now recorded


def test_results_with_no_record_of_their_settings_are_refused_unless_overwritten(tmp_path):
    workdir = WorkDir(tmp_path)
    results_of_every_stage(workdir)  # e.g. stages.json deleted, or a folder put together by hand
    with pytest.raises(OutputConflict, match=r"results of stage 'propagate' from a run that left no record"):
        workdir.begin_stage("propagate", {"method": "flow", "num_frames": 10})
    assert workdir.probabilities_file("a").is_file() and not workdir.stages_file.exists()
    workdir.begin_stage("propagate", {"method": "flow", "num_frames": 10}, overwrite=True)
    assert not workdir.probabilities_file("a").is_file() and workdir.objects_file("a").is_file()
    assert list(json.loads(workdir.stages_file.read_text())) == ["propagate"]
    workdir.begin_stage("propagate", {"method": "flow", "num_frames": 10})  # recorded now: resumes


def test_another_process_of_the_same_run_writing_first_is_no_conflict(tmp_path):
    """Processes of one run do not wait for each other: another process's results may lie here before the main
    process recorded the stage. Each process looks at its own share only."""
    from vng.pipeline.workdir import shard_of

    workdir = WorkDir(tmp_path)
    keys = [f"video{i}" for i in range(8)]
    share = {key: shard_of(key, 2) for key in keys}
    assert set(share.values()) == {0, 1}
    for key in keys:
        if share[key] == 1:  # process 1 was quicker
            workdir.objects_file(key).parent.mkdir(parents=True)
            workdir.objects_file(key).write_text("x")
    workdir.begin_stage("objects", {"source": "n.jsonl"}, process_index=0, num_processes=2)  # no conflict
    assert list(json.loads(workdir.stages_file.read_text())) == ["objects"]
    workdir.stages_file.unlink()  # ... but process 1's own results with no record are refused
    with pytest.raises(OutputConflict, match="left no record"):
        workdir.begin_stage("objects", {"source": "n.jsonl"}, process_index=1, num_processes=2)


@pytest.mark.parametrize("content, field", [("[]", None), ('{"propagate": 3}', "propagate"),
                                            ('{"export": {}}', "export"), ('{"propagate": {', None)])
def test_a_damaged_stages_file_is_a_located_error_and_is_left_as_it_is(tmp_path, content, field):
    workdir = WorkDir(tmp_path)
    workdir.stages_file.write_text(content)
    with pytest.raises(FormatError) as error:
        workdir.begin_stage("propagate", {"method": "flow", "num_frames": 10})
    assert "stages.json" in str(error.value) and (field is None or f"field '{field}'" in str(error.value))
    assert workdir.stages_file.read_text() == content


def test_settings_are_recorded_as_plain_json(tmp_path):
    workdir = WorkDir(tmp_path)
    workdir.begin_stage("candidates", {"config": CandidateConfig(), "seed": 0, "path": tmp_path})
    workdir.begin_stage("candidates", {"config": CandidateConfig(), "seed": 0, "path": tmp_path})
    with pytest.raises(OutputConflict, match="min_distance"):
        workdir.begin_stage("candidates", {"config": CandidateConfig(min_distance=5), "seed": 0, "path": tmp_path})
    recorded = json.loads(workdir.stages_file.read_text())["candidates"]
    assert recorded["config"]["min_distance"] == CandidateConfig().min_distance and recorded["path"] == str(tmp_path)


def test_where_a_method_runs_is_not_a_setting_and_only_the_main_process_records(tmp_path):
    workdir = WorkDir(tmp_path)
    method = SamPropagator(device="cuda:0", num_threads=2)
    workdir.begin_stage("propagate", {"method": method}, process_index=0, num_processes=2)
    written = workdir.stages_file.read_text()
    # process 1 on its own GPU, or a resume on another machine with another cache folder: the same run
    other = SamPropagator(device="cuda:1", config=SamPropagatorConfig(embedding_cache_dir=str(tmp_path / "cache")))
    workdir.begin_stage("propagate", {"method": other}, process_index=1, num_processes=2)
    assert workdir.stages_file.read_text() == written
    recorded = json.loads(written)["propagate"]["method"]
    assert "device" not in recorded and "embedding_cache_dir" not in recorded["config"]
    assert recorded["config"]["readout_weight"] == SamPropagatorConfig().readout_weight
    with pytest.raises(OutputConflict, match="readout_weight"):  # what changes the masks still counts
        workdir.begin_stage("propagate", {"method": SamPropagator(config=SamPropagatorConfig(readout_weight=0.5))},
                            process_index=1, num_processes=2)


def test_an_object_records_its_type_and_settings_never_its_address(tmp_path):
    workdir = WorkDir(tmp_path)
    workdir.begin_stage("trace-masks", {"segmenter": GrabCutSegmenter()})
    workdir.begin_stage("trace-masks", {"segmenter": GrabCutSegmenter()})  # another object, the same settings
    recorded = json.loads(workdir.stages_file.read_text())["trace-masks"]["segmenter"]
    assert recorded["type"] == "vng.segmenters.grabcut.GrabCutSegmenter" and "settings" in recorded


def test_bad_stage_1_input_records_nothing(tmp_path):
    from vng.pipeline.objects import make_objects

    workdir = WorkDir(tmp_path / "work")
    with pytest.raises(ValueError, match="kind must be"):
        make_objects(tmp_path / "narratives.jsonl", tmp_path, workdir, kind="narrative")
    with pytest.raises(ValueError, match="narratives.jsonl: no such file"):
        make_objects(tmp_path / "narratives.jsonl", tmp_path, workdir)
    assert not workdir.stages_file.exists()  # the corrected command is not refused
