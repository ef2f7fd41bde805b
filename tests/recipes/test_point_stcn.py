"""recipes/point_stcn.py and recipes/stcn_pseudo_masks.py: the STCN chains on the sample data, learning, resuming,
the presets and `accelerate launch`."""

import csv
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import point_stcn as recipe  # recipes/ is on the path (conftest.py)

from vng.datasets.synthetic import SampleDataConfig, generate_sample_data
from vng.io.pointvos import read_pv_annotations
from vng.models.stcn import STCN

REPOSITORY = Path(__file__).resolve().parents[2]
PSEUDO_RECIPE = REPOSITORY / "recipes" / "stcn_pseudo_masks.py"
PRESETS = sorted([*(REPOSITORY / "recipes" / "presets").glob("point_stcn_*.json"),
                  *(REPOSITORY / "recipes" / "presets").glob("stcn_pseudo_masks_*.json")])


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stcn_recipe") / "sample"
    generate_sample_data(root, seed=0, config=SampleDataConfig(num_train_videos=3, num_val_videos=2,
                                                               num_kinetics_videos=2, num_png_images=2))
    return root


def quick_config(sample: Path, output: Path, steps: int, *, supervision: str = "points", settings=(1, 5),
                 validation=("pv_davis_val",)):
    """The sample chain with ``steps`` per stage, two point settings, no loader processes, PV-DAVIS val only."""
    config = recipe.sample_config(output, supervision=supervision).with_steps(steps)
    return dataclasses.replace(config, data_root=str(sample), num_workers=0, log_every=1, checkpoint_every=2,
                               settings=settings, validation={name: config.validation[name] for name in validation})


def read_rows(output: Path) -> list[dict]:
    with (output / "logs" / "train.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_point_chain_trains_evaluates_and_saves(sample, tmp_path):
    config = quick_config(sample, tmp_path, steps=2, validation=("pv_davis_val", "pv_oops_val"))
    progress = recipe.main(config)

    stages = [stage.name for stage in config.stages]
    sets = ["pv_davis_val", "pv_oops_val"]
    assert [(e.after, e.dataset) for e in progress.evaluations] == [(a, s) for a in ["untrained", *stages]
                                                                     for s in sets]
    assert [e.step for e in progress.evaluations] == [0, 0, 2, 2, 4, 4, 6, 6]
    assert all(0 <= e.j_and_f <= 1 for e in progress.evaluations)
    # the benchmark protocols ran for every stage: per-setting folders, the summary and the plot
    for after in ["untrained", *stages]:
        for name in sets:
            folder = tmp_path / "benchmark" / after / name
            assert (folder / "summary.csv").is_file() and (folder / "jf_vs_points.png").is_file()
            assert sorted(p.name for p in folder.glob("*-points")) == ["1-points", "5-points"]
    # PV-Oops: each object's three ground-truth frames
    oops = tmp_path / "benchmark" / "untrained" / "pv_oops_val" / "5-points"
    assert {len(list(folder.iterdir())) for folder in oops.iterdir()} == {3}
    assert (tmp_path / "learning.png").is_file()
    rows = read_rows(tmp_path)
    assert [int(r["step"]) for r in rows if r["name"] == "loss"] == list(range(1, 7))
    assert {r["name"] for r in rows} >= {"pv_davis_val/j_and_f", "pv_davis_val/j_and_f_1pt", "pv_davis_val/j_and_f_5pt"}
    # the sample's PV-DAVIS / PV-YT points were simulated into the data root
    assert len(read_pv_annotations(sample / "PV" / "davis_val.json")) > 0

    final = load_file(tmp_path / "final" / "model.safetensors")
    last_stage = load_file(tmp_path / "models" / stages[-1] / "model.safetensors")
    assert all(torch.equal(final[name], last_stage[name]) for name in final)
    untrained = load_file(tmp_path / "models" / "untrained" / "model.safetensors")
    assert any(not torch.equal(final[name], untrained[name]) for name in final)
    assert STCN.from_pretrained(tmp_path / "final").config.point_radius == config.model.point_radius


def test_point_stcn_learns_from_points(sample, tmp_path):
    """A real short run: Point-STCN trained on points only must segment the validation videos far better than the
    untrained model (3 % J&F; 120 steps give 31 % with the sample's background weight)."""
    config = quick_config(sample, tmp_path, steps=0, settings=(5,))
    config = dataclasses.replace(config, stages=(
        dataclasses.replace(config.stages[1], steps=120),  # PV-Oops + PV-Kinetics clips
    ))
    progress = recipe.main(config)
    before, after = (e.j_and_f for e in progress.evaluations)
    assert before < 0.1 and after > before + 0.15, (before, after)


def test_pseudo_mask_chain_makes_masks_and_trains_on_them(sample, tmp_path):
    config = quick_config(sample, tmp_path, steps=2, supervision="pseudo_masks", settings=(2,))
    assert [config.loss_of(stage) for stage in config.stages] == ["bootstrapped", "huberised", "huberised"]
    progress = recipe.main(config)
    assert [e.after for e in progress.evaluations] == ["untrained", "static", "pv_oops_kinetics", "pv_davis_yt"]
    # GrabCut pseudo-masks of every annotated frame of the simulated PV-DAVIS training points
    davis = read_pv_annotations(sample / "PV" / "davis_train.json")
    written = list((sample / "PV" / "DAVIS" / "pseudo_masks" / "train").glob("*/*.png"))
    assert len(written) == sum(len(obj.frames) for obj in davis)
    assert (tmp_path / "benchmark" / "pv_davis_yt" / "pv_davis_val" / "2-points").is_dir()


def test_a_stopped_run_resumes_to_the_same_result(sample, tmp_path):
    config = quick_config(sample, tmp_path / "straight", steps=3, settings=(1,))
    config = dataclasses.replace(config, stages=config.stages[1:])  # video stages: cheaper clips
    straight = recipe.main(config)
    resumed_config = dataclasses.replace(config, output_dir=str(tmp_path / "resumed"))
    first = recipe.main(resumed_config, stop_after=4)  # stage 2, step 1
    assert (first.stage, first.step) == (1, 1) and not (tmp_path / "resumed" / "final").exists()
    resumed = recipe.main(resumed_config)
    assert [(e.after, e.j_and_f) for e in resumed.evaluations] == [(e.after, e.j_and_f) for e in straight.evaluations]
    expected = load_file(tmp_path / "straight" / "final" / "model.safetensors")
    actual = load_file(tmp_path / "resumed" / "final" / "model.safetensors")
    assert all(torch.equal(expected[name], actual[name]) for name in expected)


def test_accelerate_launch_of_the_pseudo_mask_recipe(sample, tmp_path):
    accelerate = Path(sys.executable).parent / "accelerate"
    if not accelerate.is_file():
        pytest.skip("no accelerate launcher next to this Python")
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_CONFIG_FILE": str(tmp_path / "none.yaml")}
    completed = subprocess.run(
        [str(accelerate), "launch", "--num_processes", "1", "--cpu", "--mixed_precision", "no",
         "--num_machines", "1", "--dynamo_backend", "no", str(PSEUDO_RECIPE), "--steps", "1",
         "--output-dir", str(tmp_path / "run"), "--data-root", str(sample)],
        capture_output=True, text=True, timeout=600, env=environment, cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "[untrained] pv_davis_val: J&F" in completed.stdout and "[pv_davis_yt] pv_davis_val" in completed.stdout
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()


def test_reference_inputs_render_points_and_masks():
    batch = recipe.PointClipBatch(
        images=torch.zeros(1, 2, 3, 32, 32, dtype=torch.uint8),
        xy=torch.tensor([[[[5.0, 5.0], [20.0, 20.0], [9.0, 25.0]], [[0.0, 0.0]] * 3]]),
        labels=torch.tensor([[[1, 0, -1], [-1, -1, -1]]], dtype=torch.int8),
        masks=torch.zeros(1, 2, 32, 32, dtype=torch.uint8), names=("a",))
    model_config = recipe.STCNConfig.tiny(point_radius=0.05)  # 1.6 px on 32 px
    masks, others = recipe.reference_inputs(batch, torch.zeros(1, 2, 3, 32, 32), model_config, from_points=True)
    assert masks.shape == others.shape == (1, 1, 32, 32)
    assert masks[0, 0, 5, 5] == 1 and masks[0, 0, 20, 20] == 0 and masks.sum() == 9  # a 3x3 disk of radius 1.6
    assert others[0, 0, 20, 20] == 1 and others[0, 0, 5, 5] == 0 and others.sum() == 9
    assert masks[0, 0, 25, 9] == 0 and others[0, 0, 25, 9] == 0  # ambiguous points are no input
    dense, none = recipe.reference_inputs(batch, torch.zeros(1, 2, 3, 32, 32), model_config, from_points=False)
    assert none is None and dense.shape == (1, 1, 32, 32)


def test_arguments_override_the_config(tmp_path):
    config, stop = recipe.parse_arguments(["--steps", "2", "--output-dir", str(tmp_path), "--stop-after", "1"])
    assert config.output_dir == str(tmp_path) and config.data_root == str(tmp_path / "sample") and stop == 1
    assert [stage.steps for stage in config.stages] == [2, 2, 2] and config.supervision == "points"
    pseudo, _ = recipe.parse_arguments([], supervision="pseudo_masks", default_output=str(tmp_path))
    assert pseudo.supervision == "pseudo_masks" and all(s.masks for st in pseudo.stages for s in st.data
                                                        if s.kind == "points")


def test_pseudo_mask_supervision_needs_masks():
    config = recipe.sample_config("/tmp/x")
    with pytest.raises(ValueError, match="needs masks"):
        dataclasses.replace(config, supervision="pseudo_masks")


def test_bad_stage_and_validation_settings_name_what_is_wrong():
    stage = recipe.sample_config("/tmp/x").stages[1]
    with pytest.raises(ValueError, match="stage 'pv_oops_kinetics': background_weight"):
        dataclasses.replace(stage, background_weight=0.0)
    with pytest.raises(ValueError, match="needs masks"):
        recipe.ValidationSet("Oops/videos/val", "Oops/val.json", kind="pv_oops")
    with pytest.raises(ValueError, match="validation kind"):
        recipe.ValidationSet("DAVIS", "PV/davis_val.json", kind="ytvos")


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_presets_are_the_table_chains(path):
    config = recipe.RecipeConfig.from_json(path)
    names = [stage.name for stage in config.stages]
    assert names[0] == "static" and names[-1] == "pv_davis_yt"
    pseudo = path.stem.startswith("stcn_pseudo_masks")
    assert config.supervision == ("pseudo_masks" if pseudo else "points")
    assert [config.loss_of(stage) for stage in config.stages] == (
        ["bootstrapped"] + ["huberised" if pseudo else "points"] * (len(names) - 1))
    assert ("Tabs. 6/7" if pseudo else "Tabs. 3/4") in config.description
    chain = path.stem.split("_")[-1]
    data = {source.annotations for stage in config.stages[1:-1] for source in stage.data}
    assert ("point-vos/Oops/train.json" in data) == ("oops" in path.stem)
    assert ("point-vos/Kinetics/train.jsonl" in data) == path.stem.endswith("kinetics")
    assert chain in ("yt", "oops", "kinetics")
    assert config.model.key_encoder == "resnet50" and set(config.validation) == {"pv_davis_val", "pv_oops_val"}
    assert config.validation["pv_oops_val"].kind == "pv_oops"
    # points stages weigh their background points (the presets' assumed density ratios, README)
    assert [stage.background_weight for stage in config.stages[1:]] == (
        [1.0] * (len(names) - 1) if pseudo else [4.0] * (len(names) - 2) + [9.0])
    assert recipe.RecipeConfig.from_dict(dataclasses.asdict(config)) == config
    np.testing.assert_equal(len(names), 2 if path.stem.endswith("davis_yt") else 3)
