"""A work folder holds one run: a stage asked to run with other settings is refused, or told to overwrite."""

import pytest

from vng.io.outputs import OutputConflict
from vng.pipeline.workdir import WorkDir
from vng.points import CandidateConfig


def test_a_stage_with_other_settings_is_refused_or_redone(tmp_path):
    workdir = WorkDir(tmp_path)
    for key in ("a", "b"):
        for path in (workdir.objects_file(key), workdir.trace_masks_file(key), workdir.probabilities_file(key),
                     workdir.tasks_part(key), workdir.video_task_dir(key) / "frames" / "000000.jpg"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x")
    workdir.begin_stage("propagate", {"method": "flow", "num_frames": 10})
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


def test_settings_are_recorded_as_plain_json(tmp_path):
    workdir = WorkDir(tmp_path)
    workdir.begin_stage("candidates", {"config": CandidateConfig(), "seed": 0, "path": tmp_path})
    workdir.begin_stage("candidates", {"config": CandidateConfig(), "seed": 0, "path": tmp_path})
    with pytest.raises(OutputConflict, match="min_distance"):
        workdir.begin_stage("candidates", {"config": CandidateConfig(min_distance=5), "seed": 0, "path": tmp_path})
