"""Train RF-VNG as in Point-VOS Tab. 10: COCO-PNG → Kinetics-VNG (or Oops-VNG) → [UVO-VNG] → [OVIS-VNG].

    accelerate launch recipes/vng_kinetics.py                       # sample data, tiny model, a few CPU minutes
    accelerate launch recipes/vng_kinetics.py --config recipes/presets/uvo_vng_kinetics.json \\
        --data-root /data --output-dir runs/uvo_vng_kinetics      # a row of Tab. 10

Every stage starts from the previous stage's weights (Sec. 4.3: "we insert another pre-training step between steps
1) and 2)"), and after it the model is evaluated on every validation set (VNG J&F, FORMATS.md §3); the untrained model
is evaluated once at the start for comparison. Mixed precision and the number of GPUs / nodes come from
``accelerate config``.

Outputs under ``--output-dir``:

    checkpoints/step_<global step>/   accelerate state + progress.json (every ``checkpoint_every`` steps, stage ends)
    logs/train.csv                    step, stage, name, value (loss, lr, validation J / F / J&F)
    logs/vng_kinetics/                TensorBoard events of the same, when tensorboard is installed
    models/<stage>/                   the model after each stage (``RFVNG.save_pretrained`` with the tokenizer)
    final/                            the model after the last stage: ``vng ground --checkpoint <output>/final``
    results.json                      J, F, J&F of every evaluation

Killed and launched again with the same arguments, the run resumes from its latest checkpoint and ends with the same
weights: the clips, augmentations and batch order depend only on (seed, epoch, index), the remaining random state
(dropout) is saved with the checkpoint.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator, DistributedDataParallelKwargs
from torch.utils.data import DataLoader

from vng.benchmark.frames import MeanScores
from vng.benchmark.grounding import vng_scores_from_frames
from vng.datasets.synthetic import generate_sample_data
from vng.datasets.vng_data import (ClipSampler, COCOPNGDataset, PointVOSVNGDataset, TransformConfig, VISVNGDataset,
                                   VNGCollator, eval_transforms, train_transforms)
from vng.io.common import write_json
from vng.io.masks import rle_decode
from vng.metrics import jaccard_and_boundary_f
from vng.models import RFVNG, RFVNGConfig
from vng.models.text import default_text_encoder_path, load_tokenizer
from vng.training import (ChainConfig, Evaluation, Progress, StageRun, format_results, parse_recipe_arguments,
                          save_checkpoint, start_run, train_stage)

DATA_KINDS = ("coco_png", "point_vos", "vis")


# --- configuration ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DataSource:
    """One training or validation set. Relative paths are under ``RecipeConfig.data_root``."""

    kind: str  # "coco_png" (still images), "point_vos" (Oops-VNG / Kinetics-VNG) or "vis" (OVIS-VNG / UVO-VNG)
    path: str  # coco_png: folder of png_coco_<split>.json; point_vos: release root; vis: meta_expressions.json
    split: str = "train"  # coco_png: "train2017"; point_vos: "train" (PV-Kinetics has no other); vis: unused
    dataset: str = "Kinetics"  # point_vos only: "Kinetics" (best in Tab. 10) or "Oops"
    frames: str | None = None  # vis: folder of frame folders; coco_png: images (None = <path>/<split>)
    vis_annotations: str | None = None  # vis: OVIS annotations_train.json / UVO_sparse_*_video.json
    extra_masks: str | None = None  # vis: VNG's extra_masks.json

    def __post_init__(self) -> None:
        if self.kind not in DATA_KINDS:
            raise ValueError(f"data kind must be one of {DATA_KINDS}, got {self.kind!r}")
        if self.kind == "vis" and (self.frames is None or (self.vis_annotations is None and self.extra_masks is None)):
            raise ValueError(f"a vis data source needs frames and vis_annotations and/or extra_masks: {self.path}")


@dataclass(frozen=True)
class StageConfig:
    """One training stage; it starts from the previous stage's weights."""

    name: str  # names the stage in logs, results and models/<name>/
    data: DataSource
    steps: int  # optimizer steps (each process sees batch_size clips per step)
    lr: float = 1e-4  # ReferFormer's AdamW learning rate; the backbone gets half (RecipeConfig.backbone_lr_scale)
    batch_size: int = 2  # clips per process and step: ReferFormer's video batch (1-2 per GPU)
    clip_length: int = 5  # frames per training clip (ReferFormer); COCO-PNG clips are always 1 frame
    max_stride: int = 3  # at most this many candidate frames between clip frames (ReferFormer's max_skip)
    train_sizes: tuple[int, ...] = (288, 320, 352, 392, 416, 448, 480, 512)  # ReferFormer's random shorter sides
    max_size: int = 640  # longer side cap (ReferFormer)
    lr_drops: tuple[float, ...] = (0.5, 0.83)  # lr × 0.1 at these fractions of the steps (ReferFormer: epoch 3, 5 of 6)

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or self.clip_length < 1:
            raise ValueError(f"stage {self.name!r}: steps must be >= 0, batch_size and clip_length >= 1")


@dataclass(frozen=True)
class ModelConfig:
    """Which RF-VNG to build (:class:`vng.models.RFVNGConfig`)."""

    size: str = "full"  # "full" (ReferFormer size, the paper) or "tiny" (tests and the CPU demo)
    backbone: str = "resnet50"  # the paper's; "efficientnet_lite0" is lighter. Ignored by "tiny"
    backbone_weights: str | None = None  # local state_dict (relative to data_root); nothing is downloaded
    text_encoder: str | None = None  # folder or hub id; None = the offline all-MiniLM-L6-v2 (the paper: roberta-base)

    def __post_init__(self) -> None:
        if self.size not in ("full", "tiny"):
            raise ValueError(f"model size must be 'full' or 'tiny', got {self.size!r}")


@dataclass(frozen=True)
class RecipeConfig(ChainConfig):
    """The whole chain. ``RecipeConfig.from_json(path)`` reads a preset (recipes/presets/*.json)."""

    stages: tuple[StageConfig, ...]
    validation: dict[str, DataSource]  # name → vis source, evaluated at the start and after every stage
    model: ModelConfig = ModelConfig()
    description: str = ""  # what the chain reproduces (e.g. the Tab. 10 row)
    data_root: str = "data/raw"  # the config's relative paths live here; data/raw is the repository's ignored folder
    output_dir: str = "outputs/vng_kinetics"  # outputs/ is ignored by git too
    sample_data: bool = False  # generate the synthetic sample data into data_root first when it is missing
    seed: int = 0  # seeds the model initialisation, the data order and every augmentation
    eval_size: int = 360  # shorter side at evaluation (ReferFormer's Ref-YouTube-VOS inference)
    eval_max_size: int = 640  # longer side cap at evaluation
    eval_clip_length: int = 36  # frames per evaluation chunk: bounds memory; queries are shared within a chunk
    backbone_lr_scale: float = 0.5  # ReferFormer: backbone lr 5e-5 for lr 1e-4
    text_encoder_lr_scale: float = 0.1  # ReferFormer: text encoder lr 1e-5 when it is trained
    weight_decay: float = 5e-4  # ReferFormer
    max_grad_norm: float = 0.1  # ReferFormer's gradient clipping
    max_text_length: int = 256  # tokens; all-MiniLM-L6-v2's max_seq_length, enough for a VidLN actor narrative
    num_workers: int = 2  # data loader processes per training process (video decoding runs there)
    log_every: int = 10  # steps between logged (mean) losses
    checkpoint_every: int = 1000  # steps between checkpoints within a stage (stage ends are always saved)
    keep_checkpoints: int = 2  # older checkpoints are deleted: the stage models stay in models/

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("a recipe needs at least one stage")
        names = [stage.name for stage in self.stages]
        if len(set(names)) != len(names) or "untrained" in names:
            raise ValueError(f"stage names must be unique and not 'untrained', got {names}")
        if any(source.kind != "vis" for source in self.validation.values()):
            raise ValueError("validation sets must be of kind 'vis' (meta_expressions.json + masks)")

    @classmethod
    def from_dict(cls, data: dict) -> RecipeConfig:
        """Inverse of ``dataclasses.asdict``; unknown keys raise (TypeError naming them)."""
        data = dict(data)
        tuples = ("train_sizes", "lr_drops")  # JSON lists
        stages = tuple(StageConfig(**{**stage, "data": DataSource(**stage["data"]),
                                      **{key: tuple(stage[key]) for key in tuples if key in stage}})
                       for stage in data.pop("stages"))
        validation = {name: DataSource(**source) for name, source in data.pop("validation").items()}
        return cls(stages=stages, validation=validation, model=ModelConfig(**data.pop("model", {})), **data)


def sample_config(output_dir: str | Path = "outputs/vng_kinetics") -> RecipeConfig:
    """The chain on the sample data (``vng sample-data``) with a tiny model: a few minutes on two CPU cores.

    COCO-PNG → Kinetics-VNG → the sample's UVO/OVIS-style VNG/train; validation on its VNG/val. Frames stay at the
    sample's 160×128 (shorter sides 96-128 in training).
    """
    # Frames at the sample's size; a tiny model and a few hundred steps: 4× ReferFormer's lr, one late lr drop (most
    # steps learn at the full lr), 3-frame clips (CPU time), 4 still images per COCO-PNG batch.
    sizes = dict(train_sizes=(96, 112, 128), max_size=160, lr_drops=(0.8,))

    def vng(split: str) -> DataSource:
        return DataSource("vis", f"VNG/{split}/meta_expressions.json", frames=f"frames/synthetic_{split}",
                          vis_annotations=f"VNG/{split}/vis_annotations.json",
                          extra_masks=f"VNG/{split}/extra_masks.json")

    return RecipeConfig(
        stages=(
            StageConfig("coco_png", DataSource("coco_png", "COCO-PNG", "train2017"), steps=150, lr=4e-4,
                        batch_size=4, **sizes),
            StageConfig("kinetics_vng", DataSource("point_vos", ".", "train", "Kinetics"), steps=150, lr=4e-4,
                        clip_length=3, **sizes),
            StageConfig("vng", vng("train"), steps=300, lr=4e-4, clip_length=3, **sizes),
        ),
        validation={"vng_val": vng("val")},
        model=ModelConfig(size="tiny"),
        description="Sample data, tiny model: COCO-PNG → Kinetics-VNG → VNG (UVO/OVIS-style), J&F on VNG/val.",
        data_root=str(Path(output_dir) / "sample"), output_dir=str(output_dir), sample_data=True,
        eval_size=128, eval_max_size=160, eval_clip_length=10, num_workers=1, log_every=10, checkpoint_every=100)


# --- data and model ---------------------------------------------------------------------------------------------------

def resolve(config: RecipeConfig, path: str | None) -> Path | None:
    return None if path is None else Path(config.data_root) / path


def build_dataset(config: RecipeConfig, source: DataSource, *, sampler: ClipSampler, transform):
    """The torch dataset of a data source (:mod:`vng.datasets.vng_data`)."""
    if source.kind == "coco_png":
        return COCOPNGDataset(resolve(config, source.path), source.split, images_dir=resolve(config, source.frames),
                              transform=transform, seed=config.seed)
    if source.kind == "point_vos":
        return PointVOSVNGDataset(resolve(config, source.path), source.dataset, source.split, sampler=sampler,
                                  transform=transform, seed=config.seed)
    return VISVNGDataset(resolve(config, source.path), resolve(config, source.frames),
                         vis_annotations=resolve(config, source.vis_annotations),
                         extra_masks=resolve(config, source.extra_masks), sampler=sampler, transform=transform,
                         seed=config.seed)


def build_model(config: RecipeConfig) -> tuple[RFVNG, object]:
    """RF-VNG from the model choice, and its text encoder's tokenizer."""
    choice = config.model
    text_encoder = choice.text_encoder or str(default_text_encoder_path())
    if choice.size == "tiny":  # tiny everything, but the real (frozen) text encoder: words must mean something
        model_config = RFVNGConfig.tiny(text_encoder=text_encoder, text_config=None)
    else:
        model_config = RFVNGConfig.full(backbone=choice.backbone, text_encoder=text_encoder,
                                        backbone_weights=str(resolve(config, choice.backbone_weights))
                                        if choice.backbone_weights else None)
    return RFVNG(model_config), load_tokenizer(text_encoder)


def parameter_groups(model: RFVNG, lr: float, config: RecipeConfig) -> list[dict]:
    """ReferFormer's learning rates: backbone and text encoder lower than the rest."""
    groups: dict[str, list[torch.nn.Parameter]] = {"backbone.": [], "text_encoder.": [], "": []}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            groups[next(prefix for prefix in groups if name.startswith(prefix))].append(parameter)
    scales = {"backbone.": config.backbone_lr_scale, "text_encoder.": config.text_encoder_lr_scale, "": 1.0}
    return [{"params": params, "lr": lr * scales[prefix]} for prefix, params in groups.items() if params]


# --- evaluation -------------------------------------------------------------------------------------------------------

@torch.no_grad()
def evaluate(accelerator: Accelerator, model: RFVNG, loader: DataLoader, dataset: VISVNGDataset,
             chunk: int) -> MeanScores:
    """VNG J&F (FORMATS.md §3): per expression J and F over its annotated frames at the original resolution, then
    the mean over all expressions. ``loader`` yields one chunk of at most ``chunk`` frames of one expression."""
    model.eval()
    items = {(e.video, e.expression.expression_id): i for i, e in enumerate(dataset.expressions)}
    rows = []
    for batch in loader:
        with accelerator.autocast():
            output = model(batch.pixel_values, batch.pixel_mask, batch.input_ids, batch.attention_mask,
                           batch.noun_token_mask)
        height, width = batch.image_sizes[0].tolist()
        probabilities = model.predict_masks(output)[:, :, :height, :width].float()
        predictions = F.interpolate(probabilities, size=tuple(batch.original_sizes[0].tolist()), mode="bilinear",
                                    align_corners=False)[0] > 0.5
        item = items[(batch.videos[0], batch.expression_ids[0])]
        track = dataset.tracks[dataset.expressions[item].expression.obj_id]
        scores = torch.full((chunk, 4), -1.0)  # (expression, frame, J, F) per frame; -1: no ground truth / padding
        for t, frame in enumerate(batch.frame_indices[0]):
            if track.segmentations[frame] is not None:
                j, f = jaccard_and_boundary_f(rle_decode(track.segmentations[frame]), predictions[t].cpu().numpy())
                scores[t] = torch.tensor([item, frame, j[0], f[0]])
        rows.append(accelerator.gather_for_metrics(scores[None].to(accelerator.device)).cpu())
    model.train()
    rows = torch.cat(rows).flatten(0, 1).numpy() if rows else np.zeros((0, 4))
    return vng_scores_from_frames(rows, [(e.video, e.expression.expression_id) for e in dataset.expressions])


# --- the chain --------------------------------------------------------------------------------------------------------

def main(config: RecipeConfig, *, stop_after: int | None = None) -> Progress:
    """Run (or resume) the chain; return its progress with every evaluation.

    Args:
        stop_after: save a checkpoint and return after this many optimizer steps of this call (time-limited jobs;
            launching again resumes).
    """
    start_time = time.perf_counter()
    output_dir = Path(config.output_dir)
    run_start = start_run(output_dir, config.stages, seed=config.seed, project="vng_kinetics",
                          # clips that never show their object leave the box heads without a gradient
                          kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    accelerator, progress, checkpoint = run_start.accelerator, run_start.progress, run_start.checkpoint
    resume_stage, stage_starts, csv_log = run_start.resume_stage, run_start.stage_starts, run_start.csv_log
    if config.sample_data and not (Path(config.data_root) / "index.json").is_file():
        if accelerator.is_main_process:
            accelerator.print(generate_sample_data(config.data_root, seed=config.seed).summary())
        accelerator.wait_for_everyone()

    # Model and validation data: every stage is evaluated on every validation set.
    model, tokenizer = build_model(config)
    model.to(accelerator.device)
    collate = VNGCollator(tokenizer, max_length=config.max_text_length)
    eval_transform = eval_transforms(TransformConfig(train_sizes=(config.eval_size,), eval_size=config.eval_size,
                                                     max_size=config.eval_max_size))
    validation = {}
    for name, source in config.validation.items():
        dataset = build_dataset(config, source, transform=eval_transform,
                                sampler=ClipSampler(mode="all", chunk_size=config.eval_clip_length))
        loader = accelerator.prepare_data_loader(DataLoader(dataset, batch_size=1, collate_fn=collate,
                                                            num_workers=config.num_workers))
        validation[name] = (dataset, loader)

    def run_evaluations(net: RFVNG, after: str, global_step: int) -> None:
        csv_log.stage = after
        for name, (dataset, loader) in validation.items():
            scores = evaluate(accelerator, net, loader, dataset, config.eval_clip_length)
            progress.evaluations.append(Evaluation(after, name, global_step, scores.j, scores.f, scores.j_and_f))
            accelerator.log({f"{name}/j": scores.j, f"{name}/f": scores.f, f"{name}/j_and_f": scores.j_and_f},
                            step=global_step)
            accelerator.print(f"[{after}] {name}: J&F {scores.j_and_f:.3f} (J {scores.j:.3f}, F {scores.f:.3f})")

    if not progress.evaluated("untrained"):
        run_evaluations(model, "untrained", 0)

    steps_this_run = 0
    for stage_index, stage in enumerate(config.stages):
        if stage_index < resume_stage:
            continue  # done before the checkpoint we resume from; its weights come with that checkpoint
        csv_log.stage = stage.name
        # Data: random clips of the stage's training set, augmented; new clips every epoch.
        transform = train_transforms(TransformConfig(train_sizes=stage.train_sizes, eval_size=min(stage.train_sizes),
                                                     max_size=stage.max_size))
        train_set = build_dataset(config, stage.data, transform=transform,
                                  sampler=ClipSampler(num_frames=stage.clip_length, max_stride=stage.max_stride))
        train_loader = DataLoader(train_set, batch_size=stage.batch_size, shuffle=True, drop_last=True,
                                  collate_fn=collate, num_workers=config.num_workers,
                                  generator=torch.Generator().manual_seed(config.seed))
        if len(train_loader) == 0:
            raise ValueError(f"stage {stage.name!r}: {len(train_set)} samples make no batch of {stage.batch_size}")
        # Optimizer: AdamW with ReferFormer's per-part learning rates, × 0.1 at each drop.
        optimizer = torch.optim.AdamW(parameter_groups(model, stage.lr, config), weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=[round(fraction * stage.steps) for fraction in stage.lr_drops], gamma=0.1)
        model, optimizer, train_loader, scheduler = accelerator.prepare(model, optimizer, train_loader, scheduler)
        if stage_index == resume_stage:
            accelerator.load_state(str(checkpoint))  # weights, optimizer, scheduler, sampler and random states
        rf_vng = accelerator.unwrap_model(model)

        progress.stage, progress.step = stage_index, (progress.step if stage_index == resume_stage else 0)

        def loss_of(batch, step: int) -> torch.Tensor:
            output = model(batch.pixel_values, batch.pixel_mask, batch.input_ids, batch.attention_mask,
                           batch.noun_token_mask)
            return rf_vng.compute_loss(output, batch.target_masks, batch.target_valid)[0]

        run = StageRun(stage.name, stage.steps, stage_starts[stage_index], output_dir, config.log_every,
                       config.checkpoint_every, config.keep_checkpoints, max_grad_norm=config.max_grad_norm)
        steps_this_run, stopped = train_stage(accelerator, model, optimizer, scheduler, train_loader, progress, run,
                                              loss_of, steps_this_run=steps_this_run, stop_after=stop_after)
        if stopped:
            accelerator.end_training()
            return progress

        if not progress.evaluated(stage.name):
            run_evaluations(rf_vng, stage.name, stage_starts[stage_index + 1])
            if accelerator.is_main_process:  # before the checkpoint that says the stage is done
                rf_vng.save_pretrained(output_dir / "models" / stage.name, tokenizer=tokenizer)
            save_checkpoint(accelerator, output_dir, progress, stage_starts[stage_index + 1],
                            keep=config.keep_checkpoints)
        model = rf_vng
        accelerator.free_memory()  # the next stage prepares its own optimizer, scheduler and data

    if accelerator.is_main_process:
        model.save_pretrained(output_dir / "final", tokenizer=tokenizer)
        write_json(output_dir / "results.json", {"description": config.description,
                                             "evaluations": [dataclasses.asdict(e) for e in progress.evaluations]},
                   indent=2)
        accelerator.print(format_results(progress))
    accelerator.print(f"done in {time.perf_counter() - start_time:.0f} s → {output_dir / 'final'}")
    accelerator.end_training()
    return progress


def parse_arguments(argv: list[str] | None = None) -> tuple[RecipeConfig, int | None]:
    return parse_recipe_arguments(argv, description=__doc__.splitlines()[0], config_class=RecipeConfig,
                                  sample_config=sample_config, default_output="outputs/vng_kinetics")


if __name__ == "__main__":
    recipe_config, stop = parse_arguments()
    main(recipe_config, stop_after=stop)
