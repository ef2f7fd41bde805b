"""PV-DAVIS / PV-YT simulation: determinism, nesting of the reference points, distances, counts, the release format."""

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from typer.testing import CliRunner

from vng.cli import app
from vng.datasets.simulate import SimulationConfig, object_rng, simulate_davis, simulate_ytvos
from vng.io.davis import write_davis_sequence, write_davis_split
from vng.io.pointvos import read_pv_annotations, write_pv_annotations
from vng.io.ytvos import YTVOSObject, write_ytvos_meta, write_ytvos_video
from vng.protocol import object_key, parse_object_key, reference_points
from vng.types import PointLabel

WIDTH, HEIGHT, FRAMES = 64, 48, 6
SMALL = SimulationConfig(num_frames=4, num_foreground=10, num_background=6, min_distance=5)  # fits a 64x48 frame


def squares(starts, size=20, step=3, frames=FRAMES, value_of=None):
    """(T, H, W) uint8 labels: square i (id i + 1, or ``value_of[i]``) at ``starts[i]`` moving ``step`` px right."""
    labels = np.zeros((frames, HEIGHT, WIDTH), np.uint8)
    for t in range(frames):
        for i, (x, y) in enumerate(starts):
            labels[t, y:y + size, x + step * t:x + step * t + size] = (value_of or {}).get(i, i + 1)
    return labels


def frames_for(labels):
    rng = np.random.default_rng(1)
    background = rng.integers(60, 120, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    return [np.where(label[..., None] > 0, np.array([220, 40, 40], np.uint8), background) for label in labels]


@pytest.fixture
def davis_root(tmp_path):
    """DAVIS-2017 layout: "alpha" with one square, "beta" with two (ids 1, 2)."""
    root = tmp_path / "davis"
    scenes = {"alpha": squares([(4, 10)]), "beta": squares([(2, 2), (30, 26)])}
    for name, labels in scenes.items():
        write_davis_sequence(root, name, frames_for(labels), labels)
    for split in ("train", "val"):
        write_davis_split(root, list(scenes), year="2017", split=split)
    return root, scenes


def test_object_rng_is_stable_and_keyed():
    draw = object_rng(0, "dog", 1).integers(0, 2 ** 31)
    assert draw == object_rng(0, "dog", 1).integers(0, 2 ** 31)
    assert draw != object_rng(0, "dog", 2).integers(0, 2 ** 31)
    assert draw != object_rng(1, "dog", 1).integers(0, 2 ** 31)
    assert draw == 1038659329  # SHA-256 of the names, not hash(): the same in every process


def test_object_key_round_trip():
    assert object_key("car_shadow", 3) == "car_shadow_3"
    assert parse_object_key("car_shadow_3") == ("car_shadow", 3)
    with pytest.raises(ValueError):
        parse_object_key("nosuffix")


def test_reference_points_nested_and_deterministic(davis_root):
    root, scenes = davis_root
    objects = simulate_davis(root, split="val", config=SMALL)
    assert [o.object_id for o in objects] == ["alpha_1", "beta_1", "beta_2"]
    assert objects == simulate_davis(root, split="val", config=SMALL)
    for obj in objects:
        assert obj.video_name == parse_object_key(obj.object_id)[0] and obj.object_name == "object"
        assert obj.frame_indices == [0]
        frame, ten = reference_points(obj, 10)
        assert frame == 0 and len(ten) == 10 and (ten.labels == PointLabel.FOREGROUND).all()
        for k in (1, 2, 5):
            _, first = reference_points(obj, k)
            np.testing.assert_array_equal(first.xy, ten.xy[:k])  # k-point setting = the first k points
        mask = scenes[obj.video_name][0] == parse_object_key(obj.object_id)[1]
        assert mask[ten.xy[:, 1].astype(int), ten.xy[:, 0].astype(int)].all()
        assert pdist(ten.xy).min() >= SMALL.min_distance
    other_seed = simulate_davis(root, split="val", config=SimulationConfig(**{**SMALL.__dict__, "seed": 1}))
    assert all(not np.array_equal(a.frames[0].points.xy, b.frames[0].points.xy) for a, b in zip(objects, other_seed))


def test_independent_of_processing_order(davis_root):
    root, _ = davis_root
    everything = {o.object_id: o for o in simulate_davis(root, split="train", config=SMALL)}
    only_beta = simulate_davis(root, split="train", config=SMALL, sequences=["beta"])
    assert [o.object_id for o in only_beta] == ["beta_1", "beta_2"]
    assert all(o == everything[o.object_id] for o in only_beta)


def test_training_points_counts_distances_and_sides(davis_root):
    root, scenes = davis_root
    for obj in simulate_davis(root, split="train", config=SMALL):
        sequence, mask_id = parse_object_key(obj.object_id)
        assert obj.frame_indices == [0, 2, 3, 5]  # 4 evenly spaced of the 6 frames where the object is visible
        for frame in obj.frames:
            points = frame.points
            labels = scenes[sequence][frame.frame_index]
            assert len(points.foreground) == 10 and len(points.background) == 6
            assert (points.labels[:10] == PointLabel.FOREGROUND).all()  # foreground first, then background
            assert pdist(points.xy).min() >= SMALL.min_distance  # fg and bg keep the distance too
            x, y = points.xy[:, 0].astype(int), points.xy[:, 1].astype(int)
            inside = labels[y, x] == mask_id
            assert inside[points.labels == PointLabel.FOREGROUND].all()
            assert not inside[points.labels == PointLabel.BACKGROUND].any()


def test_paper_distance_keeps_the_maximum_that_fits(davis_root):
    root, _ = davis_root
    objects = simulate_davis(root, split="val")  # d = 20 on 20x20 squares: 2 points fit (opposite corners)
    for obj in objects:
        _, points = reference_points(obj, 10)
        assert len(points) == 2 and pdist(points.xy).min() >= 20


def test_release_format_round_trip(davis_root, tmp_path):
    root, _ = davis_root
    for split in ("train", "val"):
        objects = simulate_davis(root, split=split, config=SMALL)
        path = tmp_path / f"pv_{split}.json"
        write_pv_annotations(path, objects)
        back = read_pv_annotations(path)
        assert back == objects  # ids, names, frames, coordinates, labels, candidate flags, file order of points
        assert reference_points(back[0], 2)[1] == reference_points(objects[0], 2)[1]


def test_davis_2016_masks_are_one_object(tmp_path):
    root = tmp_path / "davis16"
    labels = squares([(4, 10)], value_of={0: 255})
    write_davis_sequence(root, "solo", frames_for(labels), labels)
    write_davis_split(root, ["solo"], year="2016", split="val")
    (obj,) = simulate_davis(root, year="2016", split="val", config=SMALL)
    assert obj.object_id == "solo_1"
    _, points = reference_points(obj, 10)
    assert (labels[0][points.xy[:, 1].astype(int), points.xy[:, 0].astype(int)] == 255).all()


def test_unknown_sequence_is_an_error(davis_root):
    with pytest.raises(ValueError, match="nope"):
        simulate_davis(davis_root[0], split="val", sequences=["nope"])


def test_ytvos_reference_frame_is_the_first_annotated(tmp_path):
    root = tmp_path / "ytvos"
    labels = squares([(4, 10), (36, 20)], size=16, step=2)
    labels[:2][labels[:2] == 2] = 0  # object 2 appears on the third frame
    names = [f"{5 * t:05d}" for t in range(FRAMES)]
    masks = {names[0]: labels[0], names[2]: labels[2]}  # valid: masks on first appearances only
    write_ytvos_video(root, "valid", "vid", frames_for(labels), masks, names)
    write_ytvos_meta(root / "valid" / "meta.json", {"vid": {"1": YTVOSObject("cat", tuple(names)),
                                                            "2": YTVOSObject("dog", tuple(names[2:]))}})
    objects = simulate_ytvos(root, split="val", config=SMALL)
    assert [(o.object_id, o.object_name, reference_points(o, 1)[0]) for o in objects] == [
        ("vid_1", "cat", 0), ("vid_2", "dog", 2)]  # frame index = position in the frame folder, not the name


def test_cli_simulate_points(davis_root, tmp_path):
    out = tmp_path / "pv.json"
    result = CliRunner().invoke(app, ["simulate-points", "--dataset", "davis", "--root", str(davis_root[0]),
                                      "--split", "val", "--out", str(out), "--min-distance", "5"])
    assert result.exit_code == 0, result.output
    assert "3 objects, 30 points (reference)" in result.output
    assert [o.object_id for o in read_pv_annotations(out)] == ["alpha_1", "beta_1", "beta_2"]
    bad = CliRunner().invoke(app, ["simulate-points", "--dataset", "kitti", "--root", str(davis_root[0]),
                                   "--out", str(out)])
    assert bad.exit_code == 2 and "davis or ytvos" in bad.output


def test_cli_simulate_points_help():
    result = CliRunner().invoke(app, ["simulate-points", "--help"])
    assert result.exit_code == 0
    for option in ("--dataset", "--root", "--out", "--split", "--year", "--num-frames", "--num-foreground",
                   "--num-background", "--min-distance", "--seed"):
        assert option in result.output
