"""Point-VOS and Oops-/Kinetics-VNG as Hugging Face ``datasets``: conversion to parquet, loading, and back.

A converted directory is what ``datasets.load_dataset(str(out_dir))`` reads offline::

    <out_dir>/README.md                         dataset card; YAML front matter names the splits and the features
    <out_dir>/data/<split>-00000-of-0000N.parquet

One row = one object (one record of the release). The schema (:func:`point_vos_features`, :func:`vng_features`)::

    object_id, video_name, object_name, question, question_hash: string
    noun_span:  [start, end] int32 character span of object_name in question, or null
    video_path: string, the video relative to the root ("Oops/videos/train/<video_name>.mp4"), or the release's
        extracted frames of the object when there is no video ("Oops/train/JPEGImages/<object_id>")
    frames: list of one struct per annotated frame, in increasing frame_index:
        frame_id: "000042"; frame_index: int32 (0-based index of OpenCV-decoded frames)
        points_xy: list of [x, y] float32 pixels of the original frame
        labels: list of int8, 1 foreground (ACCEPTED), 0 background (REJECTED), -1 ambiguous (AMBIGUOUS)
        is_fg_candidate: list of bool
        image: the decoded frame (Image), null unless converted with ``embed_images=True``
        pseudo_mask (VNG only): palette PNG, 0 background, 1 object (Image), null where the release has none

``frames`` is a list of structs (``datasets.List``), not ``Sequence(dict)``: ``Sequence`` would turn it into a dict of
lists, and ``row["frames"][i]["points_xy"]`` reads like the data model. This needs ``datasets`` >= 4.

Images are either embedded (``embed_images=True``: frames decoded from the mp4 and pseudo-mask PNG bytes stored in the
parquet, so the directory stands alone) or referenced (``embed_images=False``: ``image`` is null and ``pseudo_mask``
holds ``{"bytes": None, "path": <relative to the root>}``; such Image features have ``decode=False`` because
``datasets`` would open a relative path from the working directory).

Usage::

    objects = [to_object_annotation(row) for row in load_oops_vng("/data/point-vos", split="train")]
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import datasets
import numpy as np
import yaml
from datasets import Features, Image, List, Value

from vng.io.common import FormatError, Location
from vng.io.pointvos import fg_candidate_flags, find_pv_frames, pseudo_mask_path, pv_annotation_path, pv_video_path
from vng.io.pv_extracted import point_pngs_dir, read_pv_split
from vng.io.video import SPLIT_NAMES, read_frames
from vng.types import FramePoints, ObjectAnnotation, Points, frame_id

__all__ = ["SPLITS", "point_vos_features", "vng_features", "convert_point_vos", "convert_vng",
           "to_object_annotation", "load_point_vos", "load_oops_vng"]

SPLITS = SPLIT_NAMES  # looked for when no splits are given; Kinetics has only train (FORMATS.md §2)
_IMAGE_FORMATS = {"jpeg": ".jpg", "png": ".png"}
_IMAGE_FORMAT = "jpeg"
_SHARD_BYTES = 256 * 2**20  # shards of a few hundred MB stream and download well (push_to_hub cuts at 500 MB)


def _features(*, pseudo_masks: bool, embed_images: bool) -> Features:
    frame = {
        "frame_id": Value("string"),
        "frame_index": Value("int32"),
        "points_xy": List(List(Value("float32"), length=2)),
        "labels": List(Value("int8")),
        "is_fg_candidate": List(Value("bool")),
        "image": Image(decode=embed_images),
    }
    if pseudo_masks:
        frame["pseudo_mask"] = Image(decode=embed_images)
    return Features({
        "object_id": Value("string"),
        "video_name": Value("string"),
        "object_name": Value("string"),
        "question": Value("string"),
        "question_hash": Value("string"),
        "noun_span": List(Value("int32"), length=2),
        "video_path": Value("string"),
        "frames": List(frame),
    })


def point_vos_features(*, embed_images: bool = False) -> Features:
    """Features of a converted PV-Oops / PV-Kinetics split (schema in the module docstring)."""
    return _features(pseudo_masks=False, embed_images=embed_images)


def vng_features(*, embed_images: bool = False) -> Features:
    """Features of a converted Oops-VNG / Kinetics-VNG split: :func:`point_vos_features` plus ``frames.pseudo_mask``."""
    return _features(pseudo_masks=True, embed_images=embed_images)


def _present_splits(root: Path, dataset: str) -> list[str]:
    splits = [split for split in SPLITS if any((root / dataset / f"{split}{suffix}").is_file()
                                               for suffix in (".json", ".jsonl"))
              or point_pngs_dir(root, dataset, split).is_dir()]
    if not splits:
        raise FileNotFoundError(f"no split file ({'/'.join(SPLITS)}.json[l]) nor point PNGs (<split>/Annotations) in "
                                f"{root / dataset}")
    return splits


def _row(obj: ObjectAnnotation, root: Path, dataset: str, split: str, *, pseudo_masks: bool, embed_images: bool,
         image_format: str) -> dict:
    try:  # the video, or the release's extracted frames of the object
        video = find_pv_frames(root, dataset, split, obj.video_name, obj.object_id)
    except FormatError:
        if embed_images:
            raise
        video = pv_video_path(root, dataset, split, obj.video_name)  # not read now: where the release puts it
    location = Location(str(video), record=obj.object_id)
    decoded = read_frames(video, obj.frame_indices, location) if embed_images else {}
    frames = []
    for frame in obj.frames:
        points = frame.points
        item = {"frame_id": frame_id(frame.frame_index), "frame_index": frame.frame_index,
                "points_xy": points.xy.tolist(), "labels": points.labels.tolist(),
                "is_fg_candidate": fg_candidate_flags(points).tolist(), "image": None}
        if embed_images:
            ok, encoded = cv2.imencode(_IMAGE_FORMATS[image_format],
                                       cv2.cvtColor(decoded[frame.frame_index], cv2.COLOR_RGB2BGR))
            if not ok:
                raise FormatError(f"cannot encode frame {frame_id(frame.frame_index)} as {image_format}", location)
            # path stays None: datasets drops the bytes of an image whose path is an existing file
            item["image"] = {"bytes": encoded.tobytes(), "path": None}
        if pseudo_masks:
            mask = pseudo_mask_path(root, dataset, split, obj.object_id, frame.frame_index)
            if not mask.is_file():
                item["pseudo_mask"] = None
            elif embed_images:
                item["pseudo_mask"] = {"bytes": mask.read_bytes(), "path": None}
            else:
                item["pseudo_mask"] = {"bytes": None, "path": mask.relative_to(root).as_posix()}
        frames.append(item)
    return {"object_id": obj.object_id, "video_name": obj.video_name, "object_name": obj.object_name,
            "question": obj.question, "question_hash": obj.question_hash,
            "noun_span": None if obj.noun_span is None else list(obj.noun_span),
            "video_path": video.relative_to(root).as_posix(), "frames": frames}


def _row_nbytes(row: dict) -> int:
    """Rough parquet size of a row, for sharding: embedded image bytes dominate; ~10 bytes per point otherwise."""
    size = 256
    for frame in row["frames"]:
        size += 10 * len(frame["labels"])
        for key in ("image", "pseudo_mask"):
            if frame.get(key) and frame[key]["bytes"]:
                size += len(frame[key]["bytes"])
    return size


def _shards(rows: Iterable[dict], max_bytes: int) -> Iterator[list[dict]]:
    shard, size = [], 0
    for row in rows:
        shard.append(row)
        size += _row_nbytes(row)
        if size >= max_bytes:
            yield shard
            shard, size = [], 0
    if shard:
        yield shard


def _card(title: str, features: Features, splits: datasets.SplitDict, embed_images: bool) -> str:
    info = datasets.DatasetInfo(config_name="default", features=features, splits=splits)
    metadata = {
        "configs": [{"config_name": "default",
                     "data_files": [{"split": split, "path": f"data/{split}-*.parquet"} for split in splits]}],
        "dataset_info": info._to_yaml_dict(),  # the library's own YAML form, so load_dataset reads the features back
    }
    images = ("frames and pseudo-masks (if any) are embedded" if embed_images
              else "frames are not embedded: decode `video_path` at `frame_index`; it and `pseudo_mask.path` (if any) "
                   "are relative to the source root")
    return (f"---\n{yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)}---\n\n"
            f"# {title}\n\n"
            f"Point annotations in the Point-VOS release format (CVPR 2024), converted by `vng.datasets.hf`: one row "
            f"per object, `frames` = one struct per annotated frame with `points_xy` ((x, y) pixels), `labels` "
            f"(1 foreground, 0 background, -1 ambiguous) and `is_fg_candidate`; {images}.\n\n"
            f"Load with `datasets.load_dataset(<this directory>)` and turn rows back into annotations with "
            f"`vng.datasets.hf.to_object_annotation`.\n")


def _replace_dir(source: Path, target: Path, *, overwrite: bool) -> None:
    """Move the complete ``source`` to ``target``; with ``overwrite`` an existing ``target`` is swapped out, then
    deleted, otherwise the rename fails (OSError) if ``target`` appeared meanwhile."""
    if not (overwrite and target.exists()):
        source.rename(target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    target.rename(old / target.name)
    source.rename(target)
    shutil.rmtree(old)


def _convert(root: str | os.PathLike, out_dir: str | os.PathLike, *, dataset: str, splits: Sequence[str] | None,
             embed_images: bool, image_format: str, max_shard_bytes: int, overwrite: bool, pseudo_masks: bool) -> Path:
    root, out_dir = Path(root), Path(out_dir)
    if image_format not in _IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {sorted(_IMAGE_FORMATS)}, got {image_format!r}")
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass overwrite=True to replace it")
    if out_dir.resolve() in (root.resolve(), *root.resolve().parents):
        raise ValueError(f"out_dir {out_dir} contains the source root {root}: replacing it would delete the source")
    splits = list(splits) if splits is not None else _present_splits(root, dataset)
    annotations = {split: read_pv_split(root, dataset, split) for split in splits}  # fail before any work
    features = _features(pseudo_masks=pseudo_masks, embed_images=embed_images)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        (work / "data").mkdir()
        split_infos = datasets.SplitDict()
        for split, objects in annotations.items():  # without records whose video is unknown, as the release says
            if not objects:  # datasets cannot load a split without rows ("corresponds to no data")
                warnings.warn(f"{root / dataset} has no usable objects in split {split!r}: split {split!r} left out "
                              f"of {out_dir}", stacklevel=3)
                continue
            rows = (_row(obj, root, dataset, split, pseudo_masks=pseudo_masks, embed_images=embed_images,
                         image_format=image_format) for obj in objects)
            written, num_bytes = [], 0
            for shard in _shards(rows, max_shard_bytes):  # streamed: one shard in memory at a time
                table = datasets.Dataset.from_list(shard, features=features)
                written.append(work / "data" / f"{split}-{len(written):05d}.parquet")
                table.to_parquet(str(written[-1]))
                num_bytes += table.data.nbytes
            for number, shard_path in enumerate(written):  # the Hub's naming, now that the count is known
                shard_path.rename(shard_path.with_name(f"{split}-{number:05d}-of-{len(written):05d}.parquet"))
            split_infos.add(datasets.SplitInfo(split, num_bytes=num_bytes, num_examples=len(objects)))
        if not split_infos:
            raise ValueError(f"no usable objects in splits {', '.join(splits)} of {root / dataset}")
        title = f"{dataset}-VNG" if pseudo_masks else f"PV-{dataset}"
        (work / "README.md").write_text(_card(title, features, split_infos, embed_images), encoding="utf-8")
        _replace_dir(work, out_dir, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out_dir


def convert_point_vos(root: str | os.PathLike, out_dir: str | os.PathLike, *, dataset: str = "Oops",
                      splits: Sequence[str] | None = None, embed_images: bool = False,
                      image_format: str = _IMAGE_FORMAT, max_shard_bytes: int = _SHARD_BYTES,
                      overwrite: bool = False) -> Path:
    """Convert PV-Oops / PV-Kinetics annotations under ``root`` into a ``datasets`` parquet directory.

    Args:
        root: holds ``<dataset>/<split>.json[l]`` and/or the point PNGs ``<dataset>/<split>/Annotations/``
            (:func:`vng.io.pv_extracted.read_pv_split`) and, for ``embed_images``, the videos
            ``<dataset>/videos/<split>/*.mp4`` or the extracted frames ``<dataset>/<split>/JPEGImages/<object_id>/``.
        out_dir: written atomically (a temporary directory beside it, renamed when complete); a failure leaves no
            partial ``out_dir`` and an existing one untouched.
        splits: default: those of ``train``/``val``/``test`` that have an annotation file.
        embed_images: decode the annotated frames from the videos and store them in the parquet.
        image_format: ``"jpeg"`` (quality 95, OpenCV default; ~10x smaller) or ``"png"`` (the decoded frame exactly).
        max_shard_bytes: approximate size of one parquet shard.
        overwrite: replace an existing ``out_dir``.

    Returns ``out_dir``. Records with a null ``video_name`` are skipped; malformed records raise
    :class:`~vng.io.common.FormatError` naming the file and the record.
    """
    return _convert(root, out_dir, dataset=dataset, splits=splits, embed_images=embed_images,
                    image_format=image_format, max_shard_bytes=max_shard_bytes, overwrite=overwrite,
                    pseudo_masks=False)


def convert_vng(root: str | os.PathLike, out_dir: str | os.PathLike, *, dataset: str = "Oops",
                splits: Sequence[str] | None = None, embed_images: bool = False, image_format: str = _IMAGE_FORMAT,
                max_shard_bytes: int = _SHARD_BYTES, overwrite: bool = False) -> Path:
    """Convert Oops-VNG / Kinetics-VNG (:func:`convert_point_vos` plus the pseudo-masks of
    ``<root>/<dataset>/pseudo_masks/<split>/<object_id>/<frame_id>.png``; a missing one becomes null)."""
    return _convert(root, out_dir, dataset=dataset, splits=splits, embed_images=embed_images,
                    image_format=image_format, max_shard_bytes=max_shard_bytes, overwrite=overwrite,
                    pseudo_masks=True)


def to_object_annotation(row: dict) -> ObjectAnnotation:
    """A row of a converted dataset back to the data model (images and pseudo-masks are not part of it)."""
    frames = tuple(
        FramePoints(frame["frame_index"], Points(
            xy=np.asarray(frame["points_xy"], np.float32).reshape(-1, 2),
            labels=np.asarray(frame["labels"], np.int8),
            is_fg_candidate=np.asarray(frame["is_fg_candidate"], bool)))
        for frame in row["frames"])
    span = row["noun_span"]
    return ObjectAnnotation(object_id=row["object_id"], video_name=row["video_name"],
                            object_name=row["object_name"], question=row["question"],
                            question_hash=row["question_hash"], frames=frames,
                            noun_span=None if span is None else tuple(span))


def _is_converted(path: Path) -> bool:
    return any((path / "data").glob("*.parquet")) or (
        (path / "README.md").is_file() and "configs:" in (path / "README.md").read_text(encoding="utf-8"))


def _source_key(root: Path, dataset: str, split: str, options: str, watched: Iterable[Path]) -> str:
    """A hash of what a conversion reads: root, options, and (path, size, mtime) of the files it depends on."""
    digest = hashlib.sha256(f"{root.resolve()}\0{dataset}\0{split}\0{options}".encode())
    for top in watched:
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())  # none if missing
        for path in files:
            stat = path.stat()
            digest.update(f"\0{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _load(path: str | os.PathLike, *, split: str, dataset: str, cache_dir: str | os.PathLike | None,
          embed_images: bool, pseudo_masks: bool) -> datasets.Dataset:
    path = Path(path)
    if _is_converted(path):
        return datasets.load_dataset(str(path), split=split, cache_dir=None if cache_dir is None else str(cache_dir))
    pngs = point_pngs_dir(path, dataset, split)
    try:
        watched = [pv_annotation_path(path, dataset, split)]
    except FileNotFoundError:
        if not pngs.is_dir():
            raise FileNotFoundError(f"{path} is neither a converted dataset (README.md with configs, data/*.parquet) "
                                    f"nor a Point-VOS root with {dataset}/{split}.json, {dataset}/{split}.jsonl or "
                                    f"{pngs}") from None
        watched = []
    # the converted copy depends on the annotations (JSON, point PNGs), on the pseudo-masks (which exist, and their
    # bytes when embedded) and, when embedding, on the videos or extracted frames
    watched += [pngs]
    watched += [path / dataset / "pseudo_masks" / split] if pseudo_masks else []
    watched += [path / dataset / "videos" / split, path / dataset / split / "JPEGImages"] if embed_images else []
    cache = (Path(cache_dir) if cache_dir is not None
             else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vng")
    kind = "vng" if pseudo_masks else "point_vos"
    key = _source_key(path, dataset, split, f"{kind} embed={embed_images}", watched)
    converted = cache / "converted" / f"{kind}-{dataset}-{split}-{key}"
    if not converted.exists():  # conversions are renamed into place when complete, so an existing one is whole
        try:
            _convert(path, converted, dataset=dataset, splits=[split], embed_images=embed_images,
                     image_format=_IMAGE_FORMAT, max_shard_bytes=_SHARD_BYTES, overwrite=False,
                     pseudo_masks=pseudo_masks)
        except OSError:
            if not converted.is_dir():  # else another process (e.g. a data-parallel rank) converted it first
                raise
    return datasets.load_dataset(str(converted), split=split, cache_dir=None if cache_dir is None else str(cache_dir))


def load_oops_vng(path: str | os.PathLike, *, split: str = "train", dataset: str = "Oops",
                  cache_dir: str | os.PathLike | None = None, embed_images: bool = False) -> datasets.Dataset:
    """Oops-VNG (or ``dataset="Kinetics"``: Kinetics-VNG) as a ``datasets.Dataset`` with :func:`vng_features`.

    ``path`` is either a directory written by :func:`convert_vng` (loaded as is) or a raw root, converted on first use
    into ``<cache_dir or $XDG_CACHE_HOME/vng>/converted/<key>``; the key hashes the root, the options and the size and
    mtime of the files read, so an edited annotation file or pseudo-mask triggers a new conversion. ``cache_dir`` is
    also the ``datasets`` cache. ``dataset`` and ``embed_images`` only matter for a raw root.
    """
    return _load(path, split=split, dataset=dataset, cache_dir=cache_dir, embed_images=embed_images,
                 pseudo_masks=True)


def load_point_vos(path: str | os.PathLike, *, split: str = "train", dataset: str = "Oops",
                   cache_dir: str | os.PathLike | None = None, embed_images: bool = False) -> datasets.Dataset:
    """PV-Oops / PV-Kinetics as a ``datasets.Dataset`` with :func:`point_vos_features` (see :func:`load_oops_vng`)."""
    return _load(path, split=split, dataset=dataset, cache_dir=cache_dir, embed_images=embed_images,
                 pseudo_masks=False)
