"""The STCN / Point-STCN session: prompts, several objects, both directions, bounded memory, streaming, agreement
with the model's own step, the Point-STCN method of the benchmark and the `vng segment` command."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from vng.cli import app
from vng.io.masks import read_mask_png
from vng.io.video import RenderedVideo
from vng.methods import PointSTCNMethod
from vng.methods.stcn import STCNInferenceConfig, STCNSession, _FrameGeometry
from vng.models.stcn import STCN, STCNConfig, soft_aggregate
from vng.types import Points

torch.set_num_threads(1)


class MovingSquareVideo(RenderedVideo):
    """A procedural video (nothing on disk, nothing cached): a red square drifting right over grey; counts reads."""

    def __init__(self, num_frames: int, width: int = 64, height: int = 64):
        super().__init__(self._draw, num_frames, (width, height), name="moving-square")
        self.reads: list[int] = []

    def square(self, index: int) -> np.ndarray:
        mask = np.zeros((self.size[1], self.size[0]), bool)
        x = 8 + index % 24
        mask[16:40, x:x + 20] = True
        return mask

    def _draw(self, index: int) -> np.ndarray:
        self.reads.append(index)
        frame = np.full((self.size[1], self.size[0], 3), 90, np.uint8)
        frame[self.square(index)] = (200, 30, 30)
        return frame

    def __iter__(self):
        raise AssertionError("the session must stream frames one by one, not iterate the whole video")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return STCN(STCNConfig.tiny()).eval()


def test_two_objects_forward(model):
    video = MovingSquareVideo(12)
    session = STCNSession(model, video, config=STCNInferenceConfig(size=None))
    corner = np.zeros((64, 64), bool)
    corner[:8, :8] = True
    session.add_points(0, 1, Points(xy=[[18, 28], [60, 60], [2, 60]], labels=[1, 0, -1]))
    session.add_mask(0, 2, corner)
    assert session.object_ids == [1, 2] and session.prompted_frames == [0]
    frames = []
    for frame_index, masks in session.propagate():
        frames.append(frame_index)
        assert set(masks) == {1, 2}
        assert masks[1].shape == (64, 64) and masks[1].dtype == bool
        assert not (masks[1] & masks[2]).any()  # one argmax: disjoint
        if frame_index == 0:
            assert np.array_equal(masks[2], corner)  # a mask prompt is the output on its frame
    assert frames == list(range(12))
    assert sorted(video.reads) == list(range(12))  # each frame decoded once
    assert session.memory_frames == {1: (0, 5, 10), 2: (0, 5, 10)}  # every 5 frames, not on the last frame


def test_probabilities_agree_with_the_masks(model):
    video = MovingSquareVideo(6)
    session = STCNSession(model, video, config=STCNInferenceConfig(size=None))
    session.add_points(0, 1, np.array([[18, 28]]))
    session.add_points(0, 2, np.array([[55, 55]]))
    masks = dict(session.propagate())
    for frame_index, probabilities in session.propagate_probabilities():
        assert set(probabilities) == {1, 2} and probabilities[1].dtype == np.float32
        total = probabilities[1] + probabilities[2]
        assert probabilities[1].min() >= 0 and total.max() <= 1 + 1e-6
        background = 1 - total
        winner = np.stack([background, probabilities[1], probabilities[2]]).argmax(0)
        assert np.array_equal(winner == 1, masks[frame_index][1])


def test_reverse_and_later_prompts(model):
    session = STCNSession(model, MovingSquareVideo(15), config=STCNInferenceConfig(size=None))
    session.add_points(10, 1, np.array([[30, 28]]))
    session.add_points(4, 2, np.array([[10, 50]]))
    forward = [(frame_index, sorted(masks)) for frame_index, masks in session.propagate()]
    assert [f for f, _ in forward] == list(range(4, 15))
    assert forward[0][1] == [2] and forward[6] == (10, [1, 2])  # object 1 joins on its frame
    backward = [(frame_index, sorted(masks)) for frame_index, masks in session.propagate(reverse=True)]
    assert [f for f, _ in backward] == list(range(10, -1, -1))
    assert backward[0][1] == [1] and backward[6] == (4, [1, 2])


def test_reprompted_object_restarts_from_its_new_prompt(model):
    session = STCNSession(model, MovingSquareVideo(10), config=STCNInferenceConfig(size=None))
    session.add_points(0, 1, np.array([[18, 28]]))
    session.add_points(0, 2, np.array([[50, 55]]))
    session.add_points(6, 1, np.array([[25, 28]]))
    for frame_index, _ in session.propagate():
        if frame_index == 6:
            assert session.memory_frames[1] == (6,)  # a bank of its own, starting here
            assert session.memory_frames[2] == (0, 5, 6)  # the prompted frame is a memory frame for all


def test_memory_stays_bounded_on_a_long_video(model):
    video = MovingSquareVideo(300)
    session = STCNSession(model, video, config=STCNInferenceConfig(size=None, memory_every=5, max_memory_frames=4))
    session.add_points(0, 1, np.array([[18, 28]]))
    sizes = []
    for frame_index, _ in session.propagate():
        frames = session.memory_frames[1]
        assert len(frames) <= 4 and frames[0] == 0  # the reference is never evicted
        sizes.append(session.memory_nbytes)
    assert max(sizes) == sizes[20] == sizes[-1]  # full after 4 memory frames, then flat
    assert sorted(session.memory_frames[1]) == [0, 285, 290, 295]


def test_mask_prompt_agrees_with_the_model_step(model):
    """Frame 1 from a mask on frame 0 is STCN's step: value of the aggregated mask, top-k read, aggregation."""
    video = MovingSquareVideo(3)
    session = STCNSession(model, video, config=STCNInferenceConfig(size=None, top_k=20))
    session.add_mask(0, 1, video.square(0))
    outputs = dict(session.propagate())
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    images = [(torch.from_numpy(video[t]).permute(2, 0, 1)[None].float() / 255 - mean) / std for t in (0, 1)]
    with torch.no_grad():
        reference = model.encode_key(images[0])
        mask = torch.from_numpy(video.square(0)).float()[None, None]
        probabilities = torch.softmax(soft_aggregate(mask), 1)[:, 1:]
        values = model.encode_value(images[0], reference.f16, probabilities)
        out = model.segment(reference.key.flatten(2), values.flatten(3), model.encode_key(images[1]), top_k=20)
    expected = (torch.softmax(out.logits, 1).argmax(1) == 1)[0].numpy()
    assert np.array_equal(outputs[1][1], expected)


def test_top_k_beyond_the_memory_is_the_full_softmax(model):
    results = []
    for top_k in (None, 10 ** 6):
        session = STCNSession(model, MovingSquareVideo(12), config=STCNInferenceConfig(size=None, top_k=top_k))
        session.add_points(0, 1, np.array([[18, 28]]))
        results.append([masks[1] for _, masks in session.propagate()])
    assert all(np.array_equal(a, b) for a, b in zip(*results))


def test_points_and_mask_prompts_differ_only_in_the_reference(model):
    video = MovingSquareVideo(4)
    by_points = STCNSession(model, video, config=STCNInferenceConfig(size=None))
    by_points.add_points(0, 1, np.array([[18, 28], [12, 20]]))
    by_mask = STCNSession(model, video, config=STCNInferenceConfig(size=None))
    by_mask.add_mask(0, 1, video.square(0))
    point_masks = [masks[1] for _, masks in by_points.propagate()]
    mask_masks = [masks[1] for _, masks in by_mask.propagate()]
    assert np.array_equal(mask_masks[0], video.square(0))
    assert len(point_masks) == len(mask_masks) == 4
    assert any(not np.array_equal(a, b) for a, b in zip(point_masks, mask_masks))


def test_resized_input_gives_masks_at_the_original_size(model):
    session = STCNSession(model, MovingSquareVideo(3, width=64, height=48), config=STCNInferenceConfig(size=32))
    session.add_points(0, 1, np.array([[20, 30]]))
    assert all(masks[1].shape == (48, 64) for _, masks in session.propagate())
    geometry = _FrameGeometry.of(64, 48, 32)
    assert geometry.resized == (43, 32) and geometry.pad == (2, 3, 0, 0) and geometry.padded == (32, 48)
    moved = geometry.points(np.array([[0.0, 0.0], [63.0, 47.0]]), torch.device("cpu"))
    np.testing.assert_allclose(moved.numpy(), [[0.5 * 43 / 64 - 0.5 + 2, 0.5 * 32 / 48 - 0.5],  # centres to centres
                                               [63.5 * 43 / 64 - 0.5 + 2, 47.5 * 32 / 48 - 0.5]], rtol=1e-6)


def test_prompt_validation(model):
    session = STCNSession(model, MovingSquareVideo(3), config=STCNInferenceConfig(size=None))
    with pytest.raises(ValueError, match="add points"):
        next(session.propagate())
    with pytest.raises(ValueError, match="no foreground"):
        session.add_points(0, 1, np.array([[1, 1]]), labels=np.array([0]))
    with pytest.raises(ValueError, match="outside"):
        session.add_points(0, 1, np.array([[80, 1]]))
    with pytest.raises(ValueError, match="labels"):
        session.add_points(0, 1, Points(xy=[[1, 1]], labels=[1]), labels=np.array([1]))
    with pytest.raises(IndexError):
        session.add_points(3, 1, np.array([[1, 1]]))
    with pytest.raises(ValueError, match="empty"):
        session.add_mask(0, 1, np.zeros((64, 64), bool))
    with pytest.raises(ValueError):
        STCNInferenceConfig(max_memory_frames=1)


def test_point_stcn_method(model, tmp_path):
    model.save_pretrained(tmp_path / "ckpt")
    method = PointSTCNMethod(tmp_path / "ckpt", config=STCNInferenceConfig(size=None))
    assert pickle.loads(pickle.dumps(method)) == method  # goes to benchmark workers as a path
    session = method.start(MovingSquareVideo(3))
    session.add_points(0, 7, Points(xy=[[18, 28]], labels=[1]))
    assert [sorted(masks) for _, masks in session.propagate()] == [[7]] * 3


def test_cli_segment(model, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["segment", "--help"])
    assert result.exit_code == 0 and "--checkpoint" in result.output
    frames = tmp_path / "frames"
    frames.mkdir()
    video = MovingSquareVideo(5, width=64, height=48)
    for index in range(5):
        Image.fromarray(video[index]).save(frames / f"{index:05d}.jpg")
    model.save_pretrained(tmp_path / "ckpt")
    out = tmp_path / "masks"
    result = runner.invoke(app, ["segment", str(frames), "--frame", "2", "--points", "20,25,1;60,5,0",
                                 "--checkpoint", str(tmp_path / "ckpt"), "--out", str(out), "--device", "cpu",
                                 "--size", "48"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.png")) == [f"{i:05d}.png" for i in range(5)]  # + vng-run.json
    with Image.open(out / "00002.png") as image:
        assert image.mode == "P" and image.size == (64, 48)
    assert set(np.unique(read_mask_png(out / "00002.png"))) <= {0, 1}
    result = runner.invoke(app, ["segment", str(frames), "--points", "20,25", "--checkpoint",
                                 str(tmp_path / "ckpt"), "--out", str(out)])
    assert result.exit_code == 2 and "--points" in result.output
