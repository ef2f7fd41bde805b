import numpy as np
import pytest
from PIL import Image

from vng.io.common import FormatError
from vng.io.video import Video, list_frame_files, write_frames, write_video

WIDTH, HEIGHT = 32, 24


def make_frames(count=5):
    """Frames far apart in colour (so lossy mp4v still tells them apart), each with a gradient (so (x, y) matter)."""
    ramp = np.linspace(0, 60, WIDTH, dtype=np.uint8)[None, :, None]
    return [np.broadcast_to(ramp + np.uint8(40 * i), (HEIGHT, WIDTH, 3)).copy() for i in range(count)]


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_frame_folder_round_trip(tmp_path):
    frames = make_frames()
    paths = write_frames(tmp_path / "seq", frames, extension=".png")
    assert [p.name for p in paths] == [f"{i:06d}.png" for i in range(5)]
    video = Video.open(tmp_path / "seq")
    assert len(video) == 5 and video.size == (WIDTH, HEIGHT) and video.fps is None
    assert video.frame_names == [f"{i:06d}" for i in range(5)]
    np.testing.assert_array_equal(video[3], frames[3])
    np.testing.assert_array_equal(video[-1], frames[4])
    assert video[0].dtype == np.uint8 and video[0].shape == (HEIGHT, WIDTH, 3)
    for got, expected in zip(video, frames, strict=True):
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(IndexError):
        video[5]


def test_frame_folder_natural_order_and_jpeg_names(tmp_path):
    frames = make_frames(3)
    write_frames(tmp_path, frames, names=["10", "2", "1"], quality=100)
    assert Video.open(tmp_path).frame_names == ["1", "2", "10"]
    assert abs(Video.open(tmp_path)[2].astype(int) - frames[0]).max() <= 3  # "10" holds frames[0]; JPEG is lossy
    with pytest.raises(ValueError, match="more frames than the 2 names given"):
        write_frames(tmp_path / "b", frames, names=["a", "b"])
    with pytest.raises(ValueError, match="4 names given for 3 frames"):
        write_frames(tmp_path / "c", frames, names=["a", "b", "c", "d"])


def test_frame_folder_errors_name_the_path(tmp_path):
    with pytest.raises(FormatError, match="no such video file or frame folder") as info:
        Video.open(tmp_path / "missing")
    assert str(tmp_path / "missing") in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="no frame images"):
        Video.open(tmp_path / "empty")
    write_frames(tmp_path / "mixed", make_frames(2), extension=".png")
    Image.new("RGB", (8, 8)).save(tmp_path / "mixed" / "000002.png")
    video = Video.open(tmp_path / "mixed")
    with pytest.raises(FormatError, match="frame is 8x8") as info:
        video[2]
    assert "000002.png" in str(info.value)
    Image.new("RGB", (8, 8)).save(tmp_path / "mixed" / "000002.jpg")
    with pytest.raises(FormatError, match="several extensions"):
        list_frame_files(tmp_path / "mixed")


def test_video_file_round_trip_and_random_access(tmp_path):
    frames = make_frames()
    path = tmp_path / "clip.mp4"
    write_video(path, iter(frames), fps=12.0)
    assert leftovers(tmp_path) == []
    video = Video.open(path)
    assert video.size == (WIDTH, HEIGHT) and video.fps == pytest.approx(12.0)
    assert len(video) == 5 and video.frame_names == ["000000", "000001", "000002", "000003", "000004"]

    def close(a, b):
        return np.abs(a.astype(int) - b.astype(int)).mean() < 6

    for index in (3, 1, 4, -5, 2):  # backwards jumps re-open the decoder
        assert close(video[index], frames[index]), index
    decoded = list(video)
    assert len(decoded) == 5 and all(close(a, b) for a, b in zip(decoded, frames))
    assert len(Video.open(path, exact_length=False)) == 5  # from container metadata
    fresh = Video.open(path)
    with pytest.raises(IndexError, match="frame 7 is outside the 5 frames OpenCV decodes"):
        fresh[7]  # found by decoding forward, without a counting pass first
    assert len(fresh) == 5 and close(fresh[-1], frames[4])


def test_video_file_errors_name_the_path(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"not a video")
    with pytest.raises(FormatError, match="OpenCV cannot open this video") as info:
        Video.open(path)
    assert str(path) in str(info.value)


def test_write_video_refuses_bad_input_and_keeps_old_file(tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, make_frames(2))
    before = path.read_bytes()

    def failing():
        yield from make_frames(2)
        yield np.zeros((HEIGHT, WIDTH), np.uint8)  # not RGB: fails after two frames were encoded

    with pytest.raises(ValueError, match=r"frame 2 must be \(H, W, 3\) uint8 RGB"):
        write_video(path, failing())
    assert path.read_bytes() == before and leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="even frame sizes"):
        write_video(tmp_path / "odd.mp4", [np.zeros((5, 7, 3), np.uint8)])
    with pytest.raises(ValueError, match="frame 1 is 16x24"):
        write_video(tmp_path / "sizes.mp4", [make_frames(1)[0], np.zeros((HEIGHT, 16, 3), np.uint8)])
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "none.mp4", [])
    with pytest.raises(ValueError, match=".mp4"):
        write_video(tmp_path / "clip.avi", make_frames(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_write_frames_failure_keeps_old_frames(tmp_path):
    write_frames(tmp_path, make_frames(2), extension=".png")
    before = (tmp_path / "000001.png").read_bytes()
    with pytest.raises(ValueError, match="frame 1 must be"):
        write_frames(tmp_path, [make_frames(1)[0], np.zeros((4, 4, 3), np.float32)], extension=".png")
    assert (tmp_path / "000001.png").read_bytes() == before and leftovers(tmp_path) == []


def test_rendered_video_makes_frames_on_demand():
    from vng.io.video import RenderedVideo

    calls = []

    def render(index):
        calls.append(index)
        return np.full((4, 6, 3), index, np.uint8)

    video = RenderedVideo(render, 3, (6, 4))
    assert len(video) == 3 and video.size == (6, 4) and video.frame_names == ["000000", "000001", "000002"]
    assert video[-1][0, 0, 0] == 2 and calls == [2]
    assert [int(frame[0, 0, 0]) for frame in video] == [0, 1, 2]
    with pytest.raises(IndexError):
        video[3]
    frames = np.zeros((2, 5, 7, 3), np.uint8)
    assert RenderedVideo.from_frames(frames).size == (7, 5)
    with pytest.raises(ValueError):
        RenderedVideo.from_frames([])
