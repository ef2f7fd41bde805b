import json

import numpy as np
from typer.testing import CliRunner

from vng.cli import app
from vng.io.noun_objects import read_noun_objects, write_noun_objects
from vng.io.vidln import read_narratives
from vng.pipeline.noun_objects import localise_narratives


def test_localise_narratives_with_spacy_and_noun_segments(vidln_files):
    path, frames = vidln_files
    narratives = read_narratives(path, frames_dir=frames)
    result = localise_narratives(narratives)
    found = [(loc.noun.actor_index, loc.noun.text, loc.keyframe_index) for loc in result.localisations]
    assert found == [(0, "dog", 0), (0, "ball", 2), (1, "background", None), (1, "grass", 1)]
    dog = result.localisations[0]
    np.testing.assert_array_equal(dog.run.xy, [[16, 24], [20, 24], [24, 27]])
    # "brown dog" vs "dog" overlap but differ; "ball" vs "ball."-less segment [27, 31) is identical; background too
    assert (result.agreement.num_a, result.agreement.num_b, result.agreement.exact) == (4, 4, 3)
    from_segments = localise_narratives(narratives, source="noun_segments", include_background=False)
    assert [loc.noun.text for loc in from_segments.localisations] == ["brown dog", "ball"]
    assert from_segments.agreement is None
    assert from_segments.localisations[0].run == dog.run  # "brown" starts the window 100 ms earlier: no new points


def test_noun_objects_round_trip(vidln_files, tmp_path):
    path, frames = vidln_files
    localisations = localise_narratives(read_narratives(path, frames_dir=frames)).localisations
    out = tmp_path / "objects.jsonl"
    write_noun_objects(out, localisations, line_width=3)
    back = read_noun_objects(out)
    assert [(b.noun.text, b.run, b.area) for b in back] == [(a.noun.text, a.run, a.area) for a in localisations]
    text = out.read_text()
    write_noun_objects(out, back, line_width=3)
    assert out.read_text() == text


def test_cli_parse_narratives_writes_records_and_overlays(vidln_files, tmp_path):
    path, frames = vidln_files
    out, vis = tmp_path / "objects.jsonl", tmp_path / "vis"
    result = CliRunner().invoke(app, ["parse-narratives", str(path), "--frames", str(frames), "--out", str(out),
                                      "--visualize", str(vis)])
    assert result.exit_code == 0, result.output
    assert "1 narratives → 4 noun objects (3 localised by a trace, 1 without)" in result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0]["video_id"] == "vid0" and records[0]["keyframe"] == "000002" and records[0]["span"] == [8, 11]
    assert records[2]["keyframe"] is None and records[2]["area"] == 0
    assert len(list(vis.rglob("*.png"))) == 3


def test_cli_reports_bad_input_clearly(tmp_path, vidln_files):
    path, frames = vidln_files
    bad = tmp_path / "bad.jsonl"
    bad.write_text(path.read_text().replace('"kf_idx": 2', '"kf_idx": 9', 1))
    result = CliRunner().invoke(app, ["parse-narratives", str(bad), "--frames", str(frames), "--out",
                                      str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2
    assert "bad.jsonl:1: record 7: field 'actor_narratives[0].traces[1][0].kf_idx'" in result.output
    assert not (tmp_path / "o.jsonl").exists()
    skipped = CliRunner().invoke(app, ["parse-narratives", str(bad), "--frames", str(frames), "--out",
                                       str(tmp_path / "o.jsonl"), "--skip-bad"])
    assert skipped.exit_code == 0 and "1 record(s) skipped" in skipped.output


def test_every_command_has_help():
    runner = CliRunner()
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0
    for command in app.registered_commands:
        name = command.name or command.callback.__name__.replace("_", "-")
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, name
