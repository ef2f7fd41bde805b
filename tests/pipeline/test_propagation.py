"""Stage 3: every object propagated both ways from its own keyframe, only the sampling frames' maps kept, the passes
stopped past them, and videos with more objects than a session holds split over sessions."""

from dataclasses import dataclass, field

import numpy as np
import pytest

from vng.inference import PromptedSession
from vng.io.video import Video, decode_to_disk, write_frames, write_video
from vng.pipeline.propagation import KeyframePrompt, propagate_objects
from vng.points import evenly_spaced_frames


class _ShiftSession(PromptedSession):
    """Each object's mask moves one pixel right a frame from its prompt; every frame a pass reads is logged."""

    def __init__(self, video, log, overlap):
        super().__init__(video)
        self.log, self.overlap = log, overlap

    def allow_overlap(self):
        return self.overlap

    def propagate(self, *, reverse=False):
        active = {}
        for frame_index in self._frame_order(reverse):
            self.log.append((reverse, frame_index))
            for object_id, mask in self._prompts.get(frame_index, {}).items():
                active[object_id] = (frame_index, mask)
            if active:
                yield frame_index, {object_id: np.roll(mask, frame_index - start, axis=1)
                                    for object_id, (start, mask) in active.items()}


@dataclass(frozen=True)
class _ShiftMethod:
    log: list = field(default_factory=list)
    sessions: list = field(default_factory=list)
    overlap: bool = True  # whether its sessions can keep objects independent (allow_overlap)
    name: str = "shift"

    def start(self, video):
        self.sessions.append(video)
        return _ShiftSession(video, self.log, self.overlap)


@pytest.fixture
def video(tmp_path) -> Video:
    write_frames(tmp_path / "frames", [np.zeros((48, 64, 3), np.uint8)] * 30, extension=".png")
    return Video.open(tmp_path / "frames")


def box(x0: int, width: int = 6) -> np.ndarray:
    mask = np.zeros((48, 64), bool)
    mask[10:30, x0:x0 + width] = True
    return mask


def test_only_the_sampling_frames_are_kept_for_objects_on_their_own_keyframes(video):
    prompts = [KeyframePrompt("a", 4, box(20)), KeyframePrompt("b", 10, box(30)), KeyframePrompt("c", 20, box(25))]
    frames = evenly_spaced_frames(30, 10)
    method = _ShiftMethod()
    results = propagate_objects(video, prompts, method, frames)
    assert [r.object_id for r in results] == ["a", "b", "c"] and len(method.sessions) == 1
    for prompt, result in zip(prompts, results):
        assert result.frames == tuple(frames) and result.maps.shape == (10, 48, 64) and result.maps.dtype == np.uint8
        for frame, probability in zip(frames, result.maps):
            # forward and backward from the object's own keyframe: the mask shifted by the distance to it
            expected = np.roll(prompt.mask, frame - prompt.frame_index, axis=1)
            np.testing.assert_array_equal(probability >= 128, expected)
    # split over sessions of two objects, the maps are the same
    split = propagate_objects(video, prompts, _ShiftMethod(), frames, max_objects_per_session=2)
    assert split == results


def test_each_pass_stops_past_the_last_frame_it_needs(video):
    method = _ShiftMethod()
    propagate_objects(video, [KeyframePrompt("a", 12, box(20))], method, frames=[9, 14])
    assert method.log == [(False, 12), (False, 13), (False, 14), (True, 12), (True, 11), (True, 10), (True, 9)]


def test_several_sessions_when_a_video_has_more_objects_than_a_session_holds(video):
    prompts = [KeyframePrompt(str(i), i, box(i)) for i in range(5)]
    method = _ShiftMethod()
    results = propagate_objects(video, prompts, method, [0, 29], max_objects_per_session=2)
    assert len(method.sessions) == 3 and [r.object_id for r in results] == ["0", "1", "2", "3", "4"]
    # a method whose objects interact (STCN's aggregation) runs each object alone: overlapping referents never
    # compete for pixels
    method = _ShiftMethod(overlap=False)
    assert propagate_objects(video, prompts, method, [0, 29]) == results and len(method.sessions) == 5
    with pytest.raises(ValueError, match="prompted once"):
        propagate_objects(video, prompts[:1] * 2, method, [0])


def test_a_video_file_is_decoded_once_for_reading_backwards(tmp_path, video):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(6)]
    write_video(tmp_path / "clip.mp4", frames)
    decoded = decode_to_disk(tmp_path / "clip.mp4", tmp_path / "cache")
    original = Video.open(tmp_path / "clip.mp4")
    assert len(decoded) == 6 and decoded.size == (64, 48) and decoded.frame_names[5] == "000005"
    for index in (5, 0, 3):
        np.testing.assert_array_equal(decoded[index], original[index])
    # a frame folder is read as it is
    assert decode_to_disk(video.path, tmp_path / "unused").path == video.path and not (tmp_path / "unused").exists()
