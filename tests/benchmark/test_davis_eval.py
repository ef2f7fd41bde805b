"""vng.benchmark: DAVIS evaluation and CSVs, the CLI, VNG pooling, YouTube-VOS G, PV-Oops, located bad-input errors."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vng.benchmark.davis import DavisResults, evaluate_davis, write_davis_csvs
from vng.benchmark.frames import ObjectScores, evaluate_frames, read_label_png
from vng.benchmark.grounding import evaluate_vng
from vng.benchmark.oops import evaluate_pv_oops
from vng.benchmark.ytvos import overall_g, ytvos_scores
from vng.cli import app
from vng.io.common import FormatError
from vng.io.masks import read_mask_png, rle_encode, write_mask_png
from vng.metrics import jaccard_and_boundary_f, statistics
from vng.types import MaskTrack, VNGActor, VNGExpression, VNGVideo

SHARED_GT = Path("/work/shared/data/davis2016-val")
SHARED_PRED = Path("/work/shared/data/predictions/osvos-davis2016-val")
H, W = 24, 32


def box(top, left, height, width, value=1):
    mask = np.zeros((H, W), np.uint8)
    mask[top:top + height, left:left + width] = value
    return mask


def write_grey(path, mask):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8), mode="L").save(path)


def binary_sequence(count=5):
    """A DAVIS-2016 style object moving right: gt 0/255, prediction lagging one pixel behind from frame 2 on."""
    gt = [box(4, 3 + t, 8, 10, 255) for t in range(count)]
    pred = [box(4, 3 + t - (t >= 2), 8, 10, 255) for t in range(count)]
    return gt, pred


@pytest.fixture
def davis(tmp_path):
    """A DAVIS root with a 0/255 sequence and a two-object palette sequence, plus predictions."""
    root, results = tmp_path / "DAVIS", tmp_path / "results"
    gt, pred = binary_sequence()
    for t, (g, p) in enumerate(zip(gt, pred)):
        write_grey(root / "Annotations" / "480p" / "alpha" / f"{t:05d}.png", g)
        write_grey(results / "alpha" / f"{t:05d}.png", p)
    for t in range(4):
        labels = box(2, 2, 6, 6, 1) + box(12, 14 + t, 7, 9, 2)
        if t == 2:
            labels[20:24, 0:4] = 3  # an id absent from the first frame is not an object
            labels[0:2, 28:32] = 255  # void
        guess = box(2, 2, 6, 6, 1) + box(12, 14, 7, 9, 2)
        if t == 2:
            guess[0:2, 28:32] = 1  # a false positive on void pixels: not counted
        write_mask_png(root / "Annotations" / "480p" / "beta" / f"{t:05d}.png", labels)
        write_mask_png(results / "beta" / f"{t:05d}.png", guess)
    return root, results


def expected_scores(gt, pred, frames):
    j, f = jaccard_and_boundary_f([gt[t] for t in frames], [pred[t] for t in frames])
    return j, f


def test_binary_sequence_scores(davis):
    root, results = davis
    scores = evaluate_davis(root, results, sequences=["alpha"], processes=1)
    (alpha,) = scores.objects
    gt, pred = binary_sequence()
    j, f = expected_scores(gt, pred, [1, 2, 3])  # first and last frames excluded
    assert alpha.name == "alpha_1" and alpha.frames == (1, 2, 3)
    np.testing.assert_array_equal(alpha.j, j)
    np.testing.assert_array_equal(alpha.f, f)
    assert alpha.j_statistics == statistics(j) and alpha.f_mean == statistics(f)[0]
    everything = evaluate_davis(root / "Annotations" / "480p", results, sequences=["alpha"], processes=1,
                                first_last_excluded=False).objects[0]
    assert everything.frames == (0, 1, 2, 3, 4)


def test_multi_object_ids_and_void(davis):
    root, results = davis
    scores = evaluate_davis(root, results, sequences=["beta"], processes=1)
    assert [o.name for o in scores.objects] == ["beta_1", "beta_2"]  # id 3 appears later: not an object
    first, second = scores.objects
    np.testing.assert_array_equal(first.j, [1, 1])  # its false positive lies on void pixels in frame 2
    np.testing.assert_array_equal(first.f, [1, 1])
    gt = [box(12, 14 + t, 7, 9) for t in range(4)]
    pred = [box(12, 14, 7, 9)] * 4
    j, f = expected_scores(gt, pred, [1, 2])
    np.testing.assert_array_equal(second.j, j)
    np.testing.assert_array_equal(second.f, f)


def test_single_object_with_another_id(tmp_path):
    # one object whose id is 2, predicted as a 0/2 palette mask: any binary prediction is that object
    for t in range(3):
        write_mask_png(tmp_path / "gt" / "gamma" / f"{t:05d}.png", box(2, 2, 6, 6, 2))
        write_mask_png(tmp_path / "pred" / "gamma" / f"{t:05d}.png", box(2, 3, 6, 6, 2))
    (scores,) = evaluate_davis(tmp_path / "gt", tmp_path / "pred", processes=1).objects
    assert scores.name == "gamma_2" and scores.j.tolist() == [pytest.approx(30 / 42)]


def test_global_figures_are_means_over_objects(davis):
    root, results = davis
    scores = evaluate_davis(root, results, processes=1)
    assert [o.sequence for o in scores.objects] == ["alpha", "beta", "beta"]
    assert scores.j_mean == pytest.approx(np.mean([o.j_mean for o in scores.objects]))
    assert scores.f_decay == pytest.approx(np.mean([o.f_decay for o in scores.objects]))
    assert scores.j_and_f_mean == pytest.approx((scores.j_mean + scores.f_mean) / 2)


def test_worker_processes_give_the_same_numbers(davis):
    root, results = davis
    inline = evaluate_davis(root, results, processes=1)
    spread = evaluate_davis(root, results, processes=2)
    assert [o.name for o in spread.objects] == [o.name for o in inline.objects]
    assert spread.global_row() == inline.global_row()


def test_csvs(tmp_path):
    objects = (ObjectScores("bear", 1, (1, 2), np.array([1.0, 0.5]), np.array([0.8, 0.4])),
               ObjectScores("bike", 2, (1, 2), np.array([0.2, 0.2]), np.array([0.4, 0.6])))
    results = DavisResults(objects)
    (tmp_path / "global_results-val.csv").write_text("stale\n")
    global_path, sequence_path = write_davis_csvs(results, tmp_path, "val")
    # J-Mean (0.75 + 0.2) / 2, recall (0.5 + 0) / 2, decay (0.5 + 0) / 2; F-Mean (0.6 + 0.5) / 2,
    # F recall (0.5 + 0.5) / 2, F decay (0.4 - 0.2) / 2; J&F (0.475 + 0.55) / 2
    assert global_path.read_text() == ("J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay\n"
                                       "0.512,0.475,0.250,0.250,0.550,0.500,0.100\n")
    assert sequence_path.read_text() == "Sequence,J-Mean,F-Mean\nbear_1,0.750,0.600\nbike_2,0.200,0.500\n"
    write_davis_csvs(results, tmp_path, "test-dev", decimals=5)
    assert (tmp_path / "per-sequence_results-test-dev.csv").read_text().splitlines()[1] == "bear_1,0.75000,0.60000"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "global_results-test-dev.csv", "global_results-val.csv", "per-sequence_results-test-dev.csv",
        "per-sequence_results-val.csv"]  # no temporary files left


def test_cli_evaluate(davis, tmp_path):
    root, results = davis
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["evaluate", "--gt", str(root), "--pred", str(results), "--out", str(out),
                                      "--set", "toy", "--processes", "1"])
    assert result.exit_code == 0, result.output
    assert "J&F-Mean" in result.output and "2 sequences, 3 objects" in result.output
    assert (out / "global_results-toy.csv").is_file() and (out / "per-sequence_results-toy.csv").is_file()
    lines = (out / "per-sequence_results-toy.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == ["Sequence", "alpha_1", "beta_1", "beta_2"]
    bad = CliRunner().invoke(app, ["evaluate", "--gt", str(root), "--pred", str(tmp_path), "--out", str(out)])
    assert bad.exit_code == 2 and "no prediction folder" in bad.output


# --- bad input ----------------------------------------------------------------------------------------------------

def test_missing_prediction_frame(davis):
    root, results = davis
    (results / "alpha" / "00002.png").unlink()
    with pytest.raises(FormatError, match=r"sequence 'alpha' frame '00002': no prediction") as error:
        evaluate_davis(root, results, processes=1)
    assert str(error.value).startswith(str(results / "alpha" / "00002.png"))
    with pytest.raises(FormatError, match=r"sequence 'alpha' frame '00002': no prediction"):
        evaluate_davis(root, results, processes=2)  # raised in a worker, located all the same


def test_size_mismatch(davis):
    root, results = davis
    write_grey(results / "alpha" / "00003.png", np.zeros((H, W + 1), np.uint8))
    with pytest.raises(FormatError, match=r"'alpha' frame '00003': prediction is 33x24, ground truth is 32x24"):
        evaluate_davis(root, results, processes=1)


def test_non_binary_prediction(davis):
    root, results = davis
    mask = box(4, 3, 8, 10, 255)
    mask[5, 5] = 128  # an antialiased or probability PNG
    write_grey(results / "alpha" / "00001.png", mask)
    with pytest.raises(FormatError, match=r"sequence 'alpha' frame '00001': not a binary mask \(values 0, 128, 255\)"):
        evaluate_davis(root, results, processes=1)


def test_unknown_object_id(davis):
    root, results = davis
    write_mask_png(results / "beta" / "00001.png", box(2, 2, 6, 6, 4))
    with pytest.raises(FormatError, match=r"sequence 'beta' frame '00001': prediction holds object id\(s\) \[4\]"):
        evaluate_davis(root, results, processes=1)


def test_sequences_without_objects_or_frames(tmp_path):
    gt, results = tmp_path / "gt", tmp_path / "results"
    for t in range(3):
        write_mask_png(gt / "empty" / f"{t:05d}.png", np.zeros((H, W), np.uint8))
    for t in range(2):
        write_mask_png(gt / "short" / f"{t:05d}.png", box(2, 2, 4, 4))
    (results / "empty").mkdir(parents=True)
    (results / "short").mkdir()
    with pytest.raises(FormatError, match="sequence 'empty' frame '00000': the first ground-truth frame has no object"):
        evaluate_davis(gt, results, sequences=["empty"], processes=1)
    with pytest.raises(FormatError, match="sequence 'short': 2 frame"):
        evaluate_davis(gt, results, sequences=["short"], processes=1)


# --- the generic piece, VNG, YouTube-VOS, PV-Oops -----------------------------------------------------------------

def test_fast_png_reading_equals_read_mask_png(tmp_path):
    labels = np.random.default_rng(0).integers(0, 256, (H, W), dtype=np.uint8)
    write_grey(tmp_path / "grey.png", labels)
    write_mask_png(tmp_path / "palette.png", labels)  # OpenCV would expand a palette to colours: PIL reads it
    for name in ("grey.png", "palette.png"):
        np.testing.assert_array_equal(read_label_png(tmp_path / name), read_mask_png(tmp_path / name))
        np.testing.assert_array_equal(read_label_png(tmp_path / name), labels)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(FormatError, match="cannot read mask image"):
        read_label_png(tmp_path / "broken.png")


def test_evaluate_frames_errors():
    gt = {0: box(2, 2, 4, 4), 5: box(3, 3, 4, 4)}
    scores = evaluate_frames(gt, {0: box(2, 2, 4, 4), 5: box(3, 3, 4, 4) * 255}, sequence="v", object_id="o")
    assert scores.frames == (0, 5) and scores.j.tolist() == [1, 1]
    with pytest.raises(FormatError, match="sequence 'v' object 'o' frame 5: no prediction"):
        evaluate_frames(gt, {0: box(2, 2, 4, 4)}, sequence="v", object_id="o")
    with pytest.raises(FormatError, match="frame 0 prediction: not a binary mask"):
        evaluate_frames(gt, {0: box(2, 2, 4, 4) * 3 + box(0, 0, 1, 1), 5: gt[5]}, sequence="v", object_id="o")
    with pytest.raises(FormatError, match="frame 0: prediction is 4x4, ground truth is 32x24"):
        evaluate_frames(gt, {0: np.zeros((4, 4), bool), 5: gt[5]}, sequence="v", object_id="o")


def vng_video(name, frames, obj_ids):
    actor = VNGActor(0, "Man", "A man throws a red ball.")
    expressions = tuple(VNGExpression(str(i), 0, 2, 5, obj_id) for i, obj_id in enumerate(obj_ids))
    return VNGVideo(name, tuple(frames), (actor,), expressions)


def track(obj_id, video_id, name, masks):
    return MaskTrack(obj_id, video_id, name, H, W, tuple(None if m is None else rle_encode(m) for m in masks))


def test_vng_pools_expressions_over_videos(tmp_path):
    videos = {"v1": vng_video("v1", ["a", "b", "c"], [10]), "v2": vng_video("v2", ["x", "y"], [20, 21])}
    tracks = {10: track(10, 1, "v1", [box(2, 2, 6, 6), None, None]),  # one annotated frame, predicted exactly
              20: track(20, 2, "v2", [box(2, 2, 6, 6), box(2, 2, 6, 6)]),  # two frames, predicted one pixel off
              21: track(21, 2, "v2", [None, box(10, 10, 5, 5)])}  # one frame, missed
    predictions = {("v1", "0", "a"): box(2, 2, 6, 6), ("v2", "0", "x"): box(2, 3, 6, 6),
                   ("v2", "0", "y"): box(2, 3, 6, 6), ("v2", "1", "y"): np.zeros((H, W), np.uint8)}
    for (video, expression, frame), mask in predictions.items():
        write_grey(tmp_path / video / expression / f"{frame}.png", mask * 255)
    results = evaluate_vng(videos, tracks, tmp_path)
    assert [(o.sequence, o.object_id, o.frames) for o in results.objects] == [
        ("v1", "0", (0,)), ("v2", "0", (0, 1)), ("v2", "1", (1,))]
    # per expression J: 1, 30/42 (6x5 overlap of two 6x6 squares), 0 → J = mean of the three expression means;
    # pooling frames instead would weight the two-frame expression double
    assert results.j == pytest.approx((1 + 30 / 42 + 0) / 3)
    f_shift = jaccard_and_boundary_f(box(2, 2, 6, 6), box(2, 3, 6, 6))[1][0]
    assert results.f == pytest.approx((1 + f_shift + 0) / 3)
    assert results.j_and_f == pytest.approx((results.j + results.f) / 2)
    (tmp_path / "v2" / "0" / "y.png").unlink()
    with pytest.raises(FormatError, match=r"video 'v2' expression '0' frame 'y': no prediction"):
        evaluate_vng(videos, tracks, tmp_path)
    with pytest.raises(FormatError, match=r"video 'v1' expression '0': track 10 has 2 frames, the video 3"):
        evaluate_vng(videos, {**tracks, 10: track(10, 1, "v1", [box(2, 2, 6, 6), None])}, tmp_path)


def test_ytvos_overall():
    assert overall_g(0.8, 0.9, 0.6, 0.7) == pytest.approx(0.75)
    objects = [ObjectScores("v1", 1, (1,), np.array([0.8]), np.array([0.9])),
               ObjectScores("v1", 2, (1,), np.array([0.6]), np.array([0.5])),
               ObjectScores("v2", 1, (1,), np.array([0.4]), np.array([0.3])),
               ObjectScores("v3", 1, (1,), np.array([1.0]), np.array([1.0]))]
    classes = {"v1_1": "person", "v1_2": "person", "v2_1": "zebra", "v3_1": "dog"}
    scores = ytvos_scores(objects, classes, seen_classes=["person", "dog"], unseen_classes=["zebra"])
    assert (scores.j_seen, scores.f_seen) == pytest.approx((0.8, 0.8)) and scores.seen_objects == 3
    assert (scores.j_unseen, scores.f_unseen) == pytest.approx((0.4, 0.3)) and scores.unseen_objects == 1
    assert scores.overall == pytest.approx((0.8 + 0.8 + 0.4 + 0.3) / 4)
    by_class = ytvos_scores(objects, classes, seen_classes=["person", "dog"], unseen_classes=["zebra"],
                            average="class")
    assert by_class.j_seen == pytest.approx((0.7 + 1.0) / 2)
    with pytest.raises(ValueError, match="neither seen nor unseen"):
        ytvos_scores(objects, classes, seen_classes=["person"], unseen_classes=["zebra"])


def test_pv_oops_scores_every_ground_truth_frame(tmp_path):
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    object_id = "0123456789abcdef0123456789abcdef"
    for frame in (0, 7, 30):
        write_grey(gt_dir / object_id / f"{frame:06d}.png", box(2, 2, 6, 6, 255))
        write_grey(pred_dir / object_id / f"{frame:06d}.png", box(2, 2, 6, 6 if frame else 3, 1))
    results = evaluate_pv_oops(gt_dir, pred_dir)
    (scores,) = results.objects
    assert scores.frames == (0, 7, 30)  # the first frame counts: no first/last exclusion
    assert scores.j.tolist() == [0.5, 1, 1] and results.j == pytest.approx(2.5 / 3)
    write_grey(gt_dir / object_id / "000040.png", box(2, 2, 6, 6, 255))
    with pytest.raises(FormatError, match="4 ground-truth frames, at most 3"):
        evaluate_pv_oops(gt_dir, pred_dir)


# --- the real data (skipped where ../shared is absent) ------------------------------------------------------------

@pytest.mark.skipif(not (SHARED_GT.is_dir() and SHARED_PRED.is_dir()), reason="DAVIS-2016 val data not present")
def test_osvos_on_davis2016_val_matches_the_toolkit():
    results = evaluate_davis(SHARED_GT / "Annotations" / "480p", SHARED_PRED)
    assert len(results.objects) == 20
    assert results.j_and_f_mean == pytest.approx(0.766093, abs=1e-6)
    assert results.j_mean == pytest.approx(0.755841, abs=1e-6)
    assert results.f_mean == pytest.approx(0.776346, abs=1e-6)
