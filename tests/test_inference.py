"""The session interface's shared parts: the one loop over a video (propagate_video), label maps, soft maps."""

import numpy as np
import pytest

from vng.inference import PromptedSession, label_map, mask_to_probability, propagate_video, write_segmentation
from vng.io.masks import read_mask_png
from vng.io.video import RenderedVideo


def BlankVideo(num_frames=10, width=8, height=6):
    return RenderedVideo(lambda index: np.zeros((height, width, 3), np.uint8), num_frames, (width, height))


class RecordingSession(PromptedSession):
    """Each object's mask is one pixel whose column encodes (direction, frame): the tests see which pass answered."""

    def __init__(self, video):
        super().__init__(video)
        self.passes: list[tuple[bool, list[int]]] = []

    def propagate(self, *, reverse=False):
        seen, active = [], set()
        self.passes.append((reverse, seen))
        for frame_index in self._frame_order(reverse):
            seen.append(frame_index)
            active |= set(self._prompts.get(frame_index, {}))
            masks = {}
            for object_id in sorted(active):
                mask = np.zeros((6, 8), bool)
                mask[object_id, 4 if reverse else 0] = True
                masks[object_id] = mask
            yield frame_index, masks


def direction(mask):
    return "backward" if mask[:, 4].any() else "forward"


def prompted(video, **objects):
    session = RecordingSession(video)
    for name, frame in objects.items():
        session.add_points(frame, int(name[1:]), np.array([[1.0, 1.0]]))
    return session


def test_one_prompted_frame_runs_forward_then_backward_each_frame_once():
    session = prompted(BlankVideo(), o1=4, o2=4)
    out = list(propagate_video(session))
    assert [t for t, _ in out] == [4, 5, 6, 7, 8, 9, 3, 2, 1, 0]
    assert all(sorted(masks) == [1, 2] for _, masks in out)
    assert {t: direction(m[1]) for t, m in out} == {**{t: "forward" for t in range(4, 10)},
                                                    **{t: "backward" for t in range(4)}}


def test_objects_prompted_on_different_frames_each_come_from_their_own_prompt():
    session = prompted(BlankVideo(), o1=2, o2=6)
    out = dict(propagate_video(session))
    assert sorted(out) == list(range(10)) and all(sorted(m) == [1, 2] for m in out.values())
    for t, masks in out.items():
        assert direction(masks[1]) == ("forward" if t >= 2 else "backward")
        assert direction(masks[2]) == ("forward" if t >= 6 else "backward")
    assert [reverse for reverse, _ in session.passes] == [False, True]
    assert session.passes[1][1] == [6, 5, 4, 3, 2, 1, 0]


def test_wanted_frames_only_and_passes_stop_past_them():
    session = prompted(BlankVideo(20), o1=8)
    out = list(propagate_video(session, frames=[3, 9, 12]))
    assert [t for t, _ in out] == [9, 12, 3]
    assert session.passes[0][1] == list(range(8, 13)) and session.passes[1][1] == [8, 7, 6, 5, 4, 3]
    session = prompted(BlankVideo(20), o1=8)
    assert [t for t, _ in propagate_video(session, frames=[10, 11])] == [10, 11]
    assert [reverse for reverse, _ in session.passes] == [False]  # nothing before the prompt: no backward pass


def test_propagate_video_needs_prompts():
    with pytest.raises(ValueError, match="add points"):
        list(propagate_video(RecordingSession(BlankVideo())))


def test_write_segmentation_writes_every_frame(tmp_path):
    session = prompted(BlankVideo(5), o1=2, o3=2)
    assert write_segmentation(session, tmp_path) == 5
    labels = read_mask_png(tmp_path / "000000.png")
    assert labels[1, 4] == 1 and labels[3, 4] == 3 and labels.sum() == 4


def test_label_map_smallest_mask_wins_ties_to_the_higher_id():
    big, small = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    big[:3, :3], small[1:3, 1:3] = True, True
    labels = label_map({1: small, 2: big}, (4, 4))
    assert labels[1, 1] == 1 and labels[0, 0] == 2 and labels[3, 3] == 0
    assert label_map({1: small, 2: small.copy()}, (4, 4))[1, 1] == 2


def test_mask_to_probability_ramps_across_the_edge():
    mask = np.zeros((1, 20), bool)
    mask[0, :10] = True
    row = mask_to_probability(np.repeat(mask, 3, 0), 2.0)[1]
    np.testing.assert_allclose(row[7:13], [1.0, 0.875, 0.625, 0.375, 0.125, 0.0])
    assert mask_to_probability(mask, 0).tolist() == mask.astype(np.float32).tolist()
    assert mask_to_probability(np.zeros((3, 3), bool), 2).max() == 0


def test_binary_sessions_give_soft_maps_by_default():
    session = prompted(BlankVideo(3), o1=0)
    maps = dict(session.propagate_probabilities())
    assert maps[0][1].dtype == np.float32 and maps[0][1].max() > 0.5 and maps[0][1].min() == 0
