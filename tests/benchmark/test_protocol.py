"""The Point-VOS DAVIS protocol end to end on a tiny DAVIS-layout fixture: the oracle must score exactly 1.0."""

import csv

import cv2
import numpy as np
import torch
import pytest
from PIL import Image
from typer.testing import CliRunner

from vng.methods import FlowMethod, OracleMethod
from vng.benchmark.protocol import run_point_benchmark
from vng.inference import PromptedSession, label_map
from vng.cli import app
from vng.datasets.simulate import SimulationConfig, simulate_davis
from vng.io.davis import write_davis_sequence, write_davis_split
from vng.io.masks import read_mask_png
from vng.io.pointvos import write_pv_annotations
from vng.types import FramePoints, ObjectAnnotation, Points

WIDTH, HEIGHT, FRAMES, SIZE = 64, 48, 6, 20


def moving_squares(starts, steps):
    """(T, H, W) uint8 labels: square i (id i + 1) from ``starts[i]`` moving ``steps[i]`` px right per frame."""
    labels = np.zeros((FRAMES, HEIGHT, WIDTH), np.uint8)
    for t in range(FRAMES):
        for i, ((x, y), step) in enumerate(zip(starts, steps)):
            labels[t, y:y + SIZE, x + step * t:x + step * t + SIZE] = i + 1
    return labels


def render(labels):
    """Smooth grey background, each object a smooth-textured colour that moves with it."""
    rng = np.random.default_rng(5)
    background = cv2.GaussianBlur(rng.uniform(40, 160, (HEIGHT, WIDTH)), (0, 0), 2)
    texture = cv2.GaussianBlur(rng.uniform(0, 120, (SIZE, SIZE)), (0, 0), 1.5)
    colours = {1: (130, 20, 20), 2: (20, 20, 130)}
    frames = []
    for label in labels:
        frame = np.repeat(background[..., None], 3, axis=2)
        for object_id, colour in colours.items():
            ys, xs = np.nonzero(label == object_id)
            if len(ys):
                shade = texture[ys - ys.min(), xs - xs.min()]
                frame[ys, xs] = np.stack([c + shade / (1 if c > 100 else 4) for c in colour], axis=-1)
        frames.append(frame.astype(np.uint8))
    return frames


@pytest.fixture
def davis(tmp_path):
    """(root, points file, annotations): "alpha" with one square, "beta" with two, reference points d = 5."""
    root = tmp_path / "davis"
    scenes = {"alpha": moving_squares([(4, 14)], [3]), "beta": moving_squares([(2, 2), (40, 26)], [2, -2])}
    for name, labels in scenes.items():
        write_davis_sequence(root, name, render(labels), labels)
    write_davis_split(root, list(scenes), year="2017", split="val")
    annotations = simulate_davis(root, split="val", config=SimulationConfig(min_distance=5))
    points = tmp_path / "pv_val.json"
    write_pv_annotations(points, annotations)
    return root, points, annotations


def read_summary(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_oracle_scores_one_through_the_cli(davis, tmp_path):
    root, points, _ = davis
    out = tmp_path / "bench"
    result = CliRunner().invoke(app, ["benchmark", "--method", "oracle", "--dataset", "davis", "--root", str(root),
                                      "--points", str(points), "--out", str(out), "--processes", "1"])
    assert result.exit_code == 0, result.output
    assert "oracle  100.0" in result.output
    rows = read_summary(out / "summary.csv")
    assert rows[0] == ["points", "J&F", "J", "F"]
    assert [row[0] for row in rows[1:]] == ["1", "2", "5", "10", "mean"]
    assert all(value == "1.000000" for row in rows[1:] for value in row[1:])
    with Image.open(out / "jf_vs_points.png") as plot:
        assert plot.format == "PNG" and plot.size[0] > 100
    for k in (1, 2, 5, 10):
        assert (out / f"{k}-points" / "global_results-val.csv").is_file()
        assert (out / f"{k}-points" / "per-sequence_results-val.csv").is_file()
        beta = read_mask_png(out / f"{k}-points" / "beta" / "00003.png")
        assert set(np.unique(beta)) == {0, 1, 2}  # object ids as palette indices
        assert sorted(p.name for p in (out / f"{k}-points" / "alpha").iterdir()) == [f"{t:05d}.png"
                                                                                   for t in range(FRAMES)]
    # the folder records its run: the same run again scores again, another one is refused or replaces it whole
    assert (out / "vng-run.json").is_file() and not (out / "INCOMPLETE").exists()
    command = ["benchmark", "--method", "oracle", "--dataset", "davis", "--root", str(root), "--points", str(points),
               "--out", str(out), "--processes", "1"]
    assert CliRunner().invoke(app, command).exit_code == 0
    other = CliRunner().invoke(app, [*command, "--settings", "1"])
    assert other.exit_code == 2 and "--overwrite" in other.output and any((out / "10-points").rglob("*.png"))
    replaced = CliRunner().invoke(app, [*command, "--settings", "1", "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert any((out / "1-points").rglob("*.png")) and not any((out / "10-points").rglob("*.png"))


def test_worker_processes_give_the_same_predictions(davis, tmp_path):
    root, _, annotations = davis
    for processes in (1, 2):
        run_point_benchmark(FlowMethod(), annotations, root=root, out=tmp_path / str(processes), settings=(2,),
                            processes=processes, progress=False)
    for sequence, frames in (("alpha", FRAMES), ("beta", FRAMES)):
        for t in range(frames):
            name = f"2-points/{sequence}/{t:05d}.png"
            np.testing.assert_array_equal(read_mask_png(tmp_path / "1" / name), read_mask_png(tmp_path / "2" / name))


def test_flow_baseline_end_to_end(davis, tmp_path):
    root, _, annotations = davis
    result = run_point_benchmark(FlowMethod(), annotations, root=root, out=tmp_path / "flow", settings=(1, 5),
                                 processes=1, progress=False)
    assert result.method == "flow" and [s.num_points for s in result.settings] == [1, 5]
    assert all(s.j_and_f > 0.5 for s in result.settings), result.format_table()
    assert result.j_and_f == pytest.approx(np.mean([s.j_and_f for s in result.settings]))
    assert result.summary_csv.is_file() and result.plot.is_file()


def test_reference_frame_after_zero_scores_only_later_frames(davis, tmp_path):
    root, _, annotations = davis
    alpha = next(o for o in annotations if o.object_id == "alpha_1")
    moved = ObjectAnnotation("alpha_1", "alpha", "object", "", "",
                             (FramePoints(2, Points([[4 + 3 * 2 + 10, 24]], [1])),))
    result = run_point_benchmark(OracleMethod(), [moved], root=root, out=tmp_path / "late", settings=(1,),
                                 sequences=["alpha"], processes=1, progress=False)
    (scores,) = result.settings[0].scores.objects
    assert scores.frames == (3, 4)  # after the reference frame 2, last frame excluded
    assert result.j_and_f == 1.0
    assert len(list((tmp_path / "late" / "1-points" / "alpha").iterdir())) == FRAMES  # backward pass: all frames
    assert alpha.frame_indices == [0]


def test_missing_points_are_errors(davis, tmp_path):
    root, _, annotations = davis
    with pytest.raises(ValueError, match="no reference points for sequences"):
        run_point_benchmark(OracleMethod(), annotations, root=root, out=tmp_path / "x", sequences=["gamma"],
                            processes=1, progress=False)
    without_beta_2 = [o for o in annotations if o.object_id != "beta_2"]
    with pytest.raises(ValueError, match="beta_2"):
        run_point_benchmark(OracleMethod(), without_beta_2, root=root, out=tmp_path / "y", settings=(1,),
                            processes=1, progress=False)


def test_label_map_smallest_wins():
    big, small = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    big[:3, :3] = True
    small[2:, 2:] = True
    labels = label_map({1: small, 2: big}, (4, 4))
    assert labels[2, 2] == 1 and labels[0, 0] == 2 and labels[3, 3] == 1 and labels.dtype == np.uint8


def test_cli_benchmark_help_and_bad_input(davis, tmp_path):
    result = CliRunner().invoke(app, ["benchmark", "--help"])
    assert result.exit_code == 0
    for option in ("--method", "--dataset", "--root", "--points", "--out", "--settings", "--sequences"):
        assert option in result.output
    root, points, _ = davis
    common = ["--root", str(root), "--points", str(points), "--out", str(tmp_path / "z")]
    bad = CliRunner().invoke(app, ["benchmark", "--method", "sam", *common])
    assert bad.exit_code == 2 and "oracle, flow" in bad.output
    bad = CliRunner().invoke(app, ["benchmark", "--method", "oracle", "--settings", "1,x", *common])
    assert bad.exit_code == 2 and "integers" in bad.output


def test_point_stcn_runs_through_the_cli_with_a_checkpoint(davis, tmp_path):
    from vng.models.stcn import STCN, STCNConfig

    root, points, _ = davis
    torch.manual_seed(0)
    STCN(STCNConfig.tiny()).save_pretrained(tmp_path / "stcn")
    out = tmp_path / "bench"
    result = CliRunner().invoke(app, ["benchmark", "--method", "point-stcn", "--checkpoint", str(tmp_path / "stcn"),
                                      "--dataset", "davis", "--root", str(root), "--points", str(points),
                                      "--out", str(out), "--settings", "1", "--processes", "1"])
    assert result.exit_code == 0, result.output
    assert (out / "1-points" / "global_results-val.csv").is_file()
    missing = CliRunner().invoke(app, ["benchmark", "--method", "point-stcn", "--dataset", "davis", "--root",
                                       str(root), "--points", str(points), "--out", str(out)])
    assert missing.exit_code == 2 and "needs --checkpoint" in missing.output


class _TruthAfterReference:
    """A method whose session answers the true mask from its prompted frame on and nothing before it (to check
    the backward pass and the scoring), recording the points it was given."""

    name = "truth_after_reference"

    def __init__(self, labels):
        self.labels, self.given = labels, []

    def start(self, video):
        method = self

        class Session(PromptedSession):
            def add_points(self, frame_index, object_id, points):
                super().add_points(frame_index, object_id, points)
                self.reference = frame_index
                method.given.append((frame_index, object_id, len(points)))

            def propagate(self, *, reverse=False):
                order = range(self.reference, -1, -1) if reverse else range(self.reference, len(video))
                for t in order:
                    yield t, {1: (method.labels[t] == 1) if t >= self.reference else np.zeros_like(method.labels[t],
                                                                                                   bool)}

        return Session(video)


def test_pv_oops_benchmark_segments_each_object_both_ways_and_scores_its_sparse_frames(tmp_path):
    from vng.benchmark.oops import run_pv_oops_benchmark
    from vng.io.masks import write_mask_png

    labels = moving_squares([(4, 14)], [3])
    write_davis_sequence(tmp_path / "davis", "alpha", render(labels), labels)
    videos = tmp_path / "davis" / "JPEGImages" / "480p"
    xy = np.array([[10.0, 20.0], [14.0, 24.0], [12.0, 28.0]], np.float32)
    obj = ObjectAnnotation("obj_a", "alpha", "square", "", "",
                           (FramePoints(2, Points(xy, np.array([1, 1, 1]))),
                            FramePoints(4, Points(xy, np.array([1, 0, -1])))))
    for t in (0, 4, 5):  # frame 0 lies before the initialisation frame 2
        write_mask_png(tmp_path / "gt" / "obj_a" / f"{t:06d}.png", (labels[t] == 1).astype(np.uint8))
    method = _TruthAfterReference(labels)
    result = run_pv_oops_benchmark(method, [obj], videos=videos, gt=tmp_path / "gt", out=tmp_path / "out",
                                   settings=(1, 2), processes=1, progress=False)
    assert method.given == [(2, 1, 1), (2, 1, 2)]  # the first k foreground points of the first annotated frame
    # frames 4 and 5 perfect (J = F = 1), frame 0 empty (J = F = 0): the object's mean is 2/3 in both settings
    assert [s.j_and_f for s in result.settings] == pytest.approx([2 / 3, 2 / 3])
    assert result.j_and_f == pytest.approx(2 / 3)
    assert sorted(p.name for p in (tmp_path / "out" / "1-points" / "obj_a").iterdir()) == [
        "000000.png", "000004.png", "000005.png"]  # only the scored frames are written
    assert read_summary(result.summary_csv)[-1][0] == "mean" and result.plot.is_file()
    # through the command line, with the training-free baseline
    write_pv_annotations(tmp_path / "val.json", [obj])
    arguments = ["benchmark", "--method", "flow", "--dataset", "pv-oops", "--root", str(videos), "--points",
                 str(tmp_path / "val.json"), "--out", str(tmp_path / "cli"), "--settings", "1", "--processes", "1"]
    failed = CliRunner().invoke(app, arguments)
    assert failed.exit_code != 0 and "--masks" in failed.output
    result = CliRunner().invoke(app, [*arguments, "--masks", str(tmp_path / "gt")])
    assert result.exit_code == 0, result.output
    assert "1-point" in result.output and (tmp_path / "cli" / "1-points" / "obj_a" / "000000.png").is_file()

    (tmp_path / "gt" / "obj_b").mkdir()
    write_mask_png(tmp_path / "gt" / "obj_b" / "000001.png", np.zeros((HEIGHT, WIDTH), np.uint8))
    with pytest.raises(ValueError, match="obj_b"):
        run_pv_oops_benchmark(method, [obj], videos=videos, gt=tmp_path / "gt", out=tmp_path / "out2",
                              processes=1, progress=False)
