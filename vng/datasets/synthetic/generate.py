"""Generating the whole sample dataset in memory and writing it in every release format."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vng.datasets.synthetic.annotations import make_point_annotations, make_pseudo_masks
from vng.datasets.synthetic.coco_png import PNG_CATEGORIES, PNGSample, make_png_sample
from vng.datasets.synthetic.config import SHAPES, STREAMS, SampleDataConfig
from vng.datasets.synthetic.narratives import SceneNarrative, make_narrative
from vng.datasets.synthetic.scenes import Scene, make_scene
from vng.io.coco_png import write_panoptic_annotations, write_panoptic_png, write_png_narratives
from vng.io.common import write_json
from vng.io.davis import write_davis_sequence, write_davis_split
from vng.io.masks import rle_encode, write_mask_png
from vng.io.pointvos import pseudo_mask_path, pv_video_path, write_pv_annotations
from vng.io.video import write_frames, write_video
from vng.io.vidln import write_narratives
from vng.io.vng_format import write_extra_masks, write_meta_expressions, write_vis_annotations
from vng.io.ytvos import YTVOSObject, write_ytvos_meta, write_ytvos_video
from vng.protocol import MAX_GT_FRAMES
from vng.types import MaskTrack, ObjectAnnotation, VISVideo, VNGActor, VNGExpression, VNGVideo, frame_id


@dataclass(frozen=True, eq=False)
class SampleVideo:
    """Everything made for one video: the scene, its narrative, its point annotations and pseudo-masks."""

    scene: Scene
    story: SceneNarrative
    annotations: tuple[ObjectAnnotation, ...]
    pseudo_masks: dict[tuple[str, int], np.ndarray]


@dataclass(frozen=True)
class SampleData:
    """What :func:`generate_sample_data` wrote.

    Attributes:
        root: the output folder.
        counts: ``{what: {split: count}}``, as in ``<root>/index.json``.
        seconds: wall time of the generation (not in index.json, which must not change between runs).
    """

    root: Path
    seed: int
    config: SampleDataConfig
    counts: dict[str, dict[str, int]]
    seconds: float

    def summary(self) -> str:
        lines = [f"sample data (seed {self.seed}, {self.config.width}x{self.config.height}, "
                 f"{self.config.num_frames} frames per video) → {self.root} in {self.seconds:.1f} s"]
        for what, per_split in self.counts.items():
            lines.append(f"  {what:<24} " + ", ".join(f"{split}: {count}" for split, count in per_split.items()))
        return "\n".join(lines)


def _make_videos(stream: str, prefix: str, count: int, dataset_id: str, first_vidln_id: int, seed: int,
                 config: SampleDataConfig, *, exclude: frozenset[frozenset[str]] = frozenset()) -> list[SampleVideo]:
    videos = []
    for index in range(count):
        # One generator per video, seeded by (seed, stream, index): videos are independent of each other.
        rng = np.random.default_rng([seed, STREAMS[stream], index])
        scene = make_scene(f"{prefix}_{index:03d}", rng, config, exclude=exclude)
        story = make_narrative(scene, vidln_id=first_vidln_id + index, dataset_id=dataset_id, rng=rng, config=config)
        annotations = make_point_annotations(scene, story, seed, rng, config)
        videos.append(SampleVideo(scene, story, tuple(annotations), make_pseudo_masks(scene, annotations, rng, config)))
    return videos


def _object_set(scene: Scene) -> frozenset[str]:
    return frozenset(obj.noun for obj in scene.objects)


def _write_vidln(out: Path, name: str, videos: list[SampleVideo], config: SampleDataConfig) -> None:
    """``vidln/<name>.jsonl``, every frame under ``frames/<dataset_id>/<video_id>/`` and ``videos/...mp4``."""
    write_narratives(out / "vidln" / f"{name}.jsonl", [video.story.narrative for video in videos])
    for video in videos:
        dataset_id, scene = video.story.narrative.dataset_id, video.scene
        write_frames(out / "frames" / dataset_id / scene.video_id, scene.frames, names=scene.frame_names,
                     quality=config.jpeg_quality)
        write_video(out / "videos" / dataset_id / f"{scene.video_id}.mp4", scene.frames, fps=config.fps)


def _write_point_vos(out: Path, dataset: str, split: str, videos: list[SampleVideo], config: SampleDataConfig) -> None:
    """PV-Oops ``<split>.json`` / PV-Kinetics ``train.jsonl``, the videos, and the pseudo-masks; for a val split
    also the benchmark's ground truth (:mod:`vng.benchmark.oops`): the true masks of the last
    :data:`~vng.protocol.MAX_GT_FRAMES` annotated frames, ``<split>_masks/<object_id>/<frame_id>.png``."""
    suffix = ".jsonl" if dataset == "Kinetics" else ".json"
    write_pv_annotations(out / dataset / f"{split}{suffix}", [a for video in videos for a in video.annotations])
    for video in videos:
        write_video(pv_video_path(out, dataset, split, video.scene.video_id), video.scene.frames, fps=config.fps)
        for (object_id, frame_index), mask in video.pseudo_masks.items():
            write_mask_png(pseudo_mask_path(out, dataset, split, object_id, frame_index), mask)
        if split == "val":
            for annotation, obj in zip(video.annotations, video.scene.objects, strict=True):
                for frame in annotation.frames[1:][-MAX_GT_FRAMES:]:  # never the initialisation frame
                    name = f"{frame_id(frame.frame_index)}.png"
                    truth = video.scene.mask(obj.track_id, frame.frame_index).astype(np.uint8)
                    write_mask_png(out / dataset / f"{split}_masks" / annotation.object_id / name, truth)


def _write_davis(root: Path, splits: dict[str, list[SampleVideo]], config: SampleDataConfig) -> None:
    """DAVIS-2017 layout: all frames with instance masks (ids = track ids), ImageSets/2017/{train,val}.txt."""
    for split, videos in splits.items():
        for video in videos:
            write_davis_sequence(root, video.scene.video_id, video.scene.frames, video.scene.labels,
                                 quality=config.jpeg_quality)
        write_davis_split(root, [video.scene.video_id for video in videos], year="2017", split=split)


# YouTube-VOS keeps every 5th frame of the 30 fps source and names frames by the source index: "00000", "00005", …
_YTVOS_STEP = 5


def _write_ytvos(root: Path, splits: dict[str, list[SampleVideo]], config: SampleDataConfig) -> None:
    """YouTube-VOS layout: train annotates every frame; valid only each object's first frame, like the real valid
    split (whose scores come from a server). Dense ground truth of the same videos is in the DAVIS layout."""
    for split, videos in splits.items():
        meta = {}
        for video in videos:
            scene = video.scene
            names = [f"{_YTVOS_STEP * i:05d}" for i in range(len(scene.frames))]
            if split == "train":
                masks = {name: scene.labels[i] for i, name in enumerate(names)}
            else:
                # Every object is visible from frame 0 (make_scene guarantees it): the first frame holds them all.
                masks = {names[0]: scene.labels[0]}
            write_ytvos_video(root, split, scene.video_id, scene.frames, masks, names, quality=config.jpeg_quality)
            meta[scene.video_id] = {str(obj.track_id): YTVOSObject(obj.shape, tuple(names)) for obj in scene.objects}
        write_ytvos_meta(root / split / "meta.json", meta)


def _write_vng(root: Path, split: str, videos: list[SampleVideo]) -> dict[str, int]:
    """``meta_expressions.json`` + masks: each video's first object in ``vis_annotations.json`` (the stand-in for
    OVIS' own ``annotations_train.json``), the others in ``extra_masks.json`` (ids from 100001, disjoint).

    Frames are not copied: VIS ``file_names`` are ``<video>/<frame>.jpg`` under ``frames/<dataset_id>/``, as OVIS-VNG
    uses the OVIS frames.
    """
    meta, vis_videos, vis_tracks, extra_videos, extra_tracks = {}, [], {}, [], {}
    categories = [{"id": index + 1, "name": shape} for index, shape in enumerate(SHAPES)]
    category_ids = {}
    for number, video in enumerate(videos, start=1):
        scene, narrative = video.scene, video.story.narrative
        width, height = scene.size
        vis_video = VISVideo(id=number, width=width, height=height, length=len(scene.frames),
                             file_names=tuple(f"{scene.video_id}/{name}.jpg" for name in scene.frame_names))
        vis_videos.append(vis_video)
        obj_ids = {}  # track id → annotation id
        for obj in scene.objects:
            segmentations = tuple(rle_encode(scene.mask(obj.track_id, t)) for t in range(len(scene.frames)))
            in_vis = obj.track_id == 1
            obj_id = len(vis_tracks) + 1 if in_vis else 100_001 + len(extra_tracks)
            track = MaskTrack(obj_id, number, scene.video_id, height, width, segmentations)
            if in_vis:
                vis_tracks[obj_id] = track
                category_ids[obj_id] = SHAPES.index(obj.shape) + 1
            else:
                extra_tracks[obj_id] = track
                if not extra_videos or extra_videos[-1].id != number:
                    extra_videos.append(vis_video)
            obj_ids[obj.track_id] = obj_id
        actors = tuple(VNGActor(index, actor.actor_name, actor.caption)
                       for index, actor in enumerate(narrative.actor_narratives))
        expressions = tuple(VNGExpression(str(index), m.actor_index, m.span[0], m.span[1], obj_ids[m.track_id])
                            for index, m in enumerate(video.story.mentions))
        meta[scene.video_id] = VNGVideo(scene.video_id, scene.frame_names, actors, expressions)
    write_meta_expressions(root / split / "meta_expressions.json", meta)
    write_vis_annotations(root / split / "vis_annotations.json", vis_videos, vis_tracks, categories=categories,
                          category_ids=category_ids)
    write_extra_masks(root / split / "extra_masks.json", extra_videos, extra_tracks,
                      info={"description": "vng synthetic sample data: masks of objects not in vis_annotations.json"})
    return {"expressions": sum(len(v.expressions) for v in meta.values()), "vis_tracks": len(vis_tracks),
            "extra_tracks": len(extra_tracks)}


def _write_coco_png(root: Path, split: str, samples: list[PNGSample], config: SampleDataConfig) -> None:
    """COCO layout under ``root``: ``<split>/<id>.jpg`` images, ``panoptic_<split>/<id>.png``,
    ``panoptic_<split>.json`` and ``png_coco_<split>.json``."""
    for sample in samples:
        stem = Path(sample.panoptic.image_file_name).stem
        write_frames(root / split, [sample.image], names=[stem], quality=config.jpeg_quality)
        write_panoptic_png(root / f"panoptic_{split}" / sample.panoptic.file_name, sample.segment_ids)
    write_panoptic_annotations(root / f"panoptic_{split}.json", [s.panoptic for s in samples],
                               categories=PNG_CATEGORIES)
    write_png_narratives(root / f"png_coco_{split}.json", [s.narrative for s in samples])


def generate_sample_data(out_dir: str | Path, *, seed: int = 0, config: SampleDataConfig | None = None) -> SampleData:
    """Generate the sample dataset under ``out_dir`` in every release format (see the module docstring).

    The same ``seed`` and ``config`` give byte-identical JSON, masks and JPEG frames (the mp4 files hold the same
    frames; their container bytes are up to OpenCV's encoder).
    """
    config = config or SampleDataConfig()
    started = time.perf_counter()
    out = Path(out_dir)
    # 1. Make everything in memory: videos per split, then still images for COCO-PNG.
    train = _make_videos("train", "train", config.num_train_videos, "synthetic_train", 0, seed, config)
    seen = frozenset(_object_set(video.scene) for video in train)
    val = _make_videos("val", "val", config.num_val_videos, "synthetic_val", len(train), seed, config, exclude=seen)
    kinetics = _make_videos("kinetics", "kinetics", config.num_kinetics_videos, "synthetic_kinetics",
                            len(train) + len(val), seed, config)
    png = {}
    for split in ("train2017", "val2017"):
        rng = np.random.default_rng([seed, STREAMS[f"png_{split}"]])
        first_id = 1 if split == "train2017" else 1_000_001  # disjoint image ids across splits
        # Every third image (the first included) has a plural noun ("two red circles").
        png[split] = [make_png_sample(first_id + index, rng, config, plural=index % 3 == 0)
                      for index in range(config.num_png_images)]

    # 2. Write every format.
    for name, videos in (("train", train), ("val", val), ("kinetics_train", kinetics)):
        _write_vidln(out, name, videos, config)
    _write_point_vos(out, "Oops", "train", train, config)
    _write_point_vos(out, "Oops", "val", val, config)
    _write_point_vos(out, "Kinetics", "train", kinetics, config)
    _write_davis(out / "DAVIS", {"train": train, "val": val}, config)
    _write_ytvos(out / "YouTubeVOS", {"train": train, "valid": val}, config)
    vng_counts = {split: _write_vng(out / "VNG", split, videos) for split, videos in (("train", train), ("val", val))}
    for split, samples in png.items():
        _write_coco_png(out / "COCO-PNG", split, samples, config)

    # 3. The index: counts only (no timings, no absolute paths), so that it is identical between runs.
    splits = {"train": train, "val": val, "kinetics_train": kinetics}
    pv = {"Oops/train": train, "Oops/val": val, "Kinetics/train": kinetics}
    counts = {
        "videos": {name: len(videos) for name, videos in splits.items()},
        "frames": {name: sum(len(v.scene.frames) for v in videos) for name, videos in splits.items()},
        "objects": {name: sum(len(v.scene.objects) for v in videos) for name, videos in splits.items()},
        "vidln_narratives": {name: len(videos) for name, videos in splits.items()},
        "vidln_actor_narratives": {name: sum(len(v.story.narrative.actor_narratives) for v in videos)
                                   for name, videos in splits.items()},
        "pv_objects": {name: sum(len(v.annotations) for v in videos) for name, videos in pv.items()},
        "pv_points": {name: sum(len(f.points) for v in videos for a in v.annotations for f in a.frames)
                      for name, videos in pv.items()},
        "pseudo_masks": {name: sum(len(v.pseudo_masks) for v in videos) for name, videos in pv.items()},
        "davis_sequences": {"train": len(train), "val": len(val)},
        "ytvos_videos": {"train": len(train), "valid": len(val)},
        "vng_expressions": {split: c["expressions"] for split, c in vng_counts.items()},
        "vng_vis_tracks": {split: c["vis_tracks"] for split, c in vng_counts.items()},
        "vng_extra_tracks": {split: c["extra_tracks"] for split, c in vng_counts.items()},
        "coco_png_images": {split: len(samples) for split, samples in png.items()},
        "coco_png_nouns": {split: sum(len(s.narrative.nouns) for s in samples) for split, samples in png.items()},
    }
    write_json(out / "index.json", {
        "generator": "vng.datasets.synthetic", "seed": seed, "config": asdict(config),
        "frame_size": [config.width, config.height],
        "dataset_ids": {"train": "synthetic_train", "val": "synthetic_val", "kinetics_train": "synthetic_kinetics"},
        "layout": _LAYOUT, "counts": counts}, indent=1)
    return SampleData(out, seed, config, counts, time.perf_counter() - started)


# Where each format lies under the output folder (also written into index.json for tools and people).
_LAYOUT = {
    "vidln": "vidln/{train,val,kinetics_train}.jsonl",
    "frames": "frames/<dataset_id>/<video_id>/<frame_id>.jpg",
    "videos": "videos/<dataset_id>/<video_id>.mp4",
    "pv_oops": "Oops/{train,val}.json, Oops/videos/<split>/<video>.mp4",
    "pv_kinetics": "Kinetics/train.jsonl, Kinetics/videos/train/<video>.mp4",
    "pseudo_masks": "<Oops|Kinetics>/pseudo_masks/<split>/<object_id>/<frame_id>.png (0/1, degraded ground truth)",
    "pv_oops_benchmark": "Oops/val_masks/<object_id>/<frame_id>.png (0/1 true masks, 3 frames per object)",
    "davis": "DAVIS/{JPEGImages,Annotations}/480p/<seq>/<00000>.{jpg,png}, DAVIS/ImageSets/2017/{train,val}.txt",
    "ytvos": "YouTubeVOS/{train,valid}/{JPEGImages,Annotations}/<video>/<00005>.{jpg,png}, .../meta.json",
    "vng": "VNG/{train,val}/{meta_expressions,vis_annotations,extra_masks}.json; frames: frames/synthetic_<split>/",
    "coco_png": "COCO-PNG/png_coco_<split>.json, panoptic_<split>.json, panoptic_<split>/<id>.png, <split>/<id>.jpg",
}
