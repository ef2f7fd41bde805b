"""Outputs never destroy inputs and never mix runs: output checks, run manifests, leftover temporaries."""

import json

import pytest

from vng.io.common import atomic_write
from vng.io.outputs import (INCOMPLETE, MANIFEST, OutputConflict, begin_run, check_output, finish_run,
                            prepare_output, read_manifest, remove_stale_temporaries, start_folder_run)


def test_an_output_that_is_an_input_or_the_wrong_kind_is_refused(tmp_path):
    data = tmp_path / "narratives.jsonl"
    data.write_text("{}\n")
    with pytest.raises(OutputConflict, match=r"--out .*narratives.jsonl is an input of this command"):
        check_output(data, inputs=[data], folder=False)
    with pytest.raises(OutputConflict, match="is an input"):  # another spelling of the same file
        check_output(tmp_path / "." / "narratives.jsonl", inputs=[data], folder=False)
    with pytest.raises(OutputConflict, match="is an existing file; a folder is expected"):
        check_output(data, inputs=[], folder=True)
    with pytest.raises(OutputConflict, match="--visualize .* is an existing folder; a file is expected"):
        check_output(tmp_path, inputs=[], folder=False, option="--visualize")
    with pytest.raises(OutputConflict, match="is an input"):
        check_output(tmp_path, inputs=[None, tmp_path], folder=True)
    check_output(tmp_path / "new.jsonl", inputs=[data, None], folder=False)
    assert data.read_text() == "{}\n"


def test_a_run_resumes_itself_and_refuses_another(tmp_path):
    annotations = tmp_path / "a.json"
    annotations.write_text("[1]")
    out = tmp_path / "out"
    assert begin_run(out, "cmd", inputs={"annotations": annotations}, settings={"k": 1}) == "new"
    assert (out / INCOMPLETE).is_file() and read_manifest(out)["complete"] is False
    # a run killed here: the same command resumes it
    assert begin_run(out, "cmd", inputs={"annotations": annotations}, settings={"k": 1}) == "resume"
    finish_run(out)
    assert not (out / INCOMPLETE).exists() and read_manifest(out)["complete"] is True
    assert begin_run(out, "cmd", inputs={"annotations": annotations}, settings={"k": 1}) == "complete"
    annotations.write_text("[2]")  # corrected annotations: the same path, other content
    with pytest.raises(OutputConflict, match=r"another run \(input annotations: .*a.json \(sha256 .*\) then, .* now\)"
                                             ": pass --overwrite"):
        begin_run(out, "cmd", inputs={"annotations": annotations}, settings={"k": 1})
    with pytest.raises(OutputConflict, match="setting k: 1 then, 2 now"):
        begin_run(out, "cmd", inputs={"annotations": tmp_path / "a.json"}, settings={"k": 2})
    with pytest.raises(OutputConflict, match="made by `vng cmd`"):
        begin_run(out, "other", inputs={}, settings={})
    before = (out / MANIFEST).read_text()
    with pytest.raises(OutputConflict):
        begin_run(out, "cmd", inputs={"annotations": annotations}, settings={"k": 1}, record=False)
    assert (out / MANIFEST).read_text() == before  # refusing changes nothing
    assert begin_run(out, "cmd", inputs={"annotations": annotations}, settings={"k": 1}, overwrite=True) == "new"
    assert json.loads((out / MANIFEST).read_text())["inputs"]["annotations"]["bytes"] == 3


def test_results_of_no_recorded_run_are_not_mixed_in(tmp_path):
    (tmp_path / "00000.png").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputConflict, match="results from a run that left no record"):
        start_folder_run(tmp_path, "segment", inputs={}, settings={}, results="*.png")
    assert start_folder_run(tmp_path, "segment", inputs={}, settings={}, results="*.png", overwrite=True) == "new"
    assert not (tmp_path / "00000.png").exists() and (tmp_path / "notes.txt").read_text() == "mine"


def test_leftover_temporaries_of_killed_runs_are_cleaned(tmp_path):
    target = tmp_path / "sub" / "index.json"
    with pytest.raises(KeyboardInterrupt), atomic_write(target) as handle:
        handle.write("{")
        (leftover,) = target.parent.glob(".index.json.*.tmp")
        leftover_copy = leftover.read_bytes()
        raise KeyboardInterrupt  # atomic_write deletes its temporary; a SIGKILL would not: simulate one below
    killed = tmp_path / "sub" / leftover.name
    killed.write_bytes(leftover_copy)
    other = tmp_path / ".other.json.abcd1234.tmp"
    other.write_text("{")
    unrelated = tmp_path / ".cache.tmp"  # not atomic_write's pattern: not ours to delete
    unrelated.write_text("")
    assert remove_stale_temporaries(tmp_path / "sub", name="index.json") == [killed]
    killed.write_bytes(leftover_copy)
    prepare_output(tmp_path, inputs=[], folder=True)
    assert not killed.exists() and not other.exists() and unrelated.exists()
    prepare_output(tmp_path / "x.json", inputs=[], folder=False)
    assert unrelated.exists()


def test_overwrite_never_deletes_an_input_inside_the_output_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    mask = out / "first_mask.png"  # e.g. vng segment --mask out/first_mask.png --out out
    mask.write_bytes(b"input")
    (out / "00000.png").write_bytes(b"old result")
    start_folder_run(out, "segment", inputs={"mask": mask}, settings={}, results="*.png", overwrite=True)
    assert mask.read_bytes() == b"input" and not (out / "00000.png").exists()


def test_a_damaged_manifest_is_a_located_error_and_overwrite_starts_again(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).write_text(json.dumps({"command": "segment", "inputs": [1], "settings": {}}))
    (out / "00000.png").write_bytes(b"old result")
    with pytest.raises(ValueError, match=r"vng-run.json: field 'inputs': not a vng run manifest"):
        start_folder_run(out, "segment", inputs={}, settings={}, results="*.png")
    assert start_folder_run(out, "segment", inputs={}, settings={}, results="*.png", overwrite=True) == "new"
    assert read_manifest(out)["complete"] is False and not (out / "00000.png").exists()
