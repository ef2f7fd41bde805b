"""What every training recipe (``recipes/*.py``) shares: its command line (:func:`parse_recipe_arguments`), the
start of a run, fresh or resumed (:func:`start_run`: Accelerator, trackers, seed), where a multi-stage run is
(:class:`Progress`, saved in each checkpoint), Accelerate checkpoints that a killed run resumes from
(:func:`save_checkpoint`, :func:`latest_checkpoint`), the optimisation loop of one stage that resumes mid-epoch
(:func:`train_stage`), a CSV log that drops the rows a resumed run repeats (:class:`CSVTracker`), and the results
table (:func:`format_results`).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib.util
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.tracking import GeneralTracker
from accelerate.utils import KwargsHandler, ProjectConfiguration, set_seed

from vng.io.common import write_json

__all__ = ["CSVTracker", "ChainConfig", "Evaluation", "Progress", "RunStart", "StageRun", "format_results",
           "latest_checkpoint", "parse_recipe_arguments", "save_checkpoint", "start_run", "train_stage"]


@dataclass(frozen=True)
class Evaluation:
    """Scores of the model after a stage (or "untrained") on one validation set (VNG J&F; for the Point-VOS
    benchmark the mean over the 1/2/5/10-point settings)."""

    after: str
    dataset: str
    step: int  # global optimizer step
    j: float
    f: float
    j_and_f: float


@dataclass
class Progress:
    """Where the chain is: saved as progress.json in every checkpoint."""

    stage: int = 0  # index of the stage in progress
    step: int = 0  # optimizer steps done in that stage
    evaluations: list[Evaluation] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Progress:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(data["stage"], data["step"], [Evaluation(**e) for e in data["evaluations"]])

    def evaluated(self, after: str) -> bool:
        return any(e.after == after for e in self.evaluations)


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint (progress.json is written last)."""
    complete = [path.parent for path in folder.glob("step_*/progress.json")]
    return max(complete, key=lambda path: int(path.name.split("_")[1]), default=None)


def save_checkpoint(accelerator: Accelerator, output_dir: Path, progress: Progress, global_step: int, *,
                    keep: int) -> None:
    """``accelerator.save_state`` to ``<output_dir>/checkpoints/step_<global_step>`` + progress.json, then delete all
    but the newest ``keep`` checkpoints."""
    folder = Path(output_dir) / "checkpoints"
    target = folder / f"step_{global_step:07d}"
    if accelerator.is_main_process:  # a checkpoint saved again (stage end after a stop) is incomplete until rewritten
        (target / "progress.json").unlink(missing_ok=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(target))
    if accelerator.is_main_process:
        write_json(target / "progress.json", dataclasses.asdict(progress), indent=2)
        older = sorted(folder.glob("step_*"), key=lambda path: int(path.name.split("_")[1]))
        for path in older[:-keep]:
            shutil.rmtree(path)
    accelerator.wait_for_everyone()


class CSVTracker(GeneralTracker):
    """Accelerate tracker appending ``step, stage, name, value`` rows to a CSV file (always available).

    Rows logged after ``resume_step`` by a run that was killed are dropped when the run resumes (-1: a new run).
    """

    name = "csv"
    requires_logging_directory = False

    def __init__(self, path: Path, *, resume_step: int = -1):
        super().__init__()
        self.path, self.resume_step, self.stage = path, resume_step, ""

    @property
    def tracker(self) -> Path:
        return self.path

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        if self.path.is_file():
            with self.path.open(newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= self.resume_step]
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, ["step", "stage", "name", "value"])
            writer.writeheader()
            writer.writerows(rows)

    def log(self, values: dict, step: int | None = None, **kwargs) -> None:
        with self.path.open("a", newline="") as handle:
            csv.writer(handle).writerows([step, self.stage, name, value] for name, value in values.items())


class _Stage(Protocol):
    name: str
    steps: int


@dataclass
class RunStart:
    """A recipe run as :func:`start_run` sets it up: new, or resumed from its latest checkpoint."""

    accelerator: Accelerator
    progress: Progress  # read from the checkpoint, or a new one
    checkpoint: Path | None  # the checkpoint to resume from (its state is loaded with the stage's objects)
    stage_starts: list[int]  # the global step before each stage, then the total
    csv_log: CSVTracker

    @property
    def resume_stage(self) -> int:
        """The index of the stage to resume, -1 for a new run."""
        return self.progress.stage if self.checkpoint else -1


def start_run(output_dir: Path, stages: Sequence[_Stage], *, seed: int, project: str,
              kwargs_handlers: Sequence[KwargsHandler] = ()) -> RunStart:
    """Find the latest checkpoint under ``<output_dir>/checkpoints``, then make the Accelerator: CSV log (and
    TensorBoard when installed) under ``<output_dir>/logs``, a batch order that depends only on (seed, epoch) so
    a resumed run sees the same batches, the seed set."""
    output_dir = Path(output_dir)
    checkpoint = latest_checkpoint(output_dir / "checkpoints")
    progress = Progress.read(checkpoint / "progress.json") if checkpoint else Progress()
    stage_starts = np.cumsum([0] + [stage.steps for stage in stages]).tolist()
    csv_log = CSVTracker(output_dir / "logs" / "train.csv",
                         resume_step=stage_starts[progress.stage] + progress.step if checkpoint else -1)
    trackers = [csv_log] + (["tensorboard"] if importlib.util.find_spec("tensorboard") else [])
    accelerator = Accelerator(
        log_with=trackers, step_scheduler_with_optimizer=False,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=seed),
        kwargs_handlers=list(kwargs_handlers))
    set_seed(seed)
    accelerator.init_trackers(project)
    if checkpoint:
        accelerator.print(f"resuming from {checkpoint}: stage {stages[progress.stage].name!r}, step {progress.step}")
    return RunStart(accelerator, progress, checkpoint, stage_starts, csv_log)


class ChainConfig:
    """What the recipes' frozen config dataclasses share: a ``stages`` tuple of dataclasses with ``steps``, and a
    ``from_dict`` classmethod (the inverse of ``dataclasses.asdict``) that each defines."""

    stages: tuple

    @classmethod
    def from_json(cls, path: str | Path) -> Any:
        """Read a preset (``recipes/presets/*.json``)."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def with_steps(self, steps: int) -> Any:
        """The same chain with ``steps`` optimizer steps in every stage (quick checks)."""
        return dataclasses.replace(self, stages=tuple(dataclasses.replace(s, steps=steps) for s in self.stages))


Config = TypeVar("Config", bound=ChainConfig)


def parse_recipe_arguments(argv: list[str] | None, *, description: str, config_class: type[Config],
                           sample_config: Callable[[str], Config], default_output: str
                           ) -> tuple[Config, int | None]:
    """A recipe's command line: a JSON preset or the sample chain, with the data root, output folder and steps per
    stage overridden. Returns the config and ``--stop-after`` (None when not given)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", type=Path, help="JSON preset (recipes/presets/); default: the sample-data chain")
    parser.add_argument("--data-root", help="where the config's relative data paths live")
    parser.add_argument("--output-dir", help="checkpoints, logs, models, results (default: the config's)")
    parser.add_argument("--steps", type=int, help="optimizer steps of every stage (quick checks)")
    parser.add_argument("--stop-after", type=int, help="checkpoint and exit after this many steps (resumable)")
    args = parser.parse_args(argv)
    config = config_class.from_json(args.config) if args.config else sample_config(args.output_dir or default_output)
    if args.data_root:
        config = dataclasses.replace(config, data_root=args.data_root)
    if args.output_dir:
        config = dataclasses.replace(config, output_dir=args.output_dir)
    if args.steps is not None:
        config = config.with_steps(args.steps)
    return config, args.stop_after


def format_results(progress: Progress) -> str:
    """The evaluations as a small table: one row per stage, one column per validation set."""
    datasets = list(dict.fromkeys(e.dataset for e in progress.evaluations))
    rows = {}
    for e in progress.evaluations:
        rows.setdefault(e.after, {})[e.dataset] = e.j_and_f
    lines = ["after".ljust(16) + "".join(f"{name} J&F".rjust(16) for name in datasets)]
    for after, scores in rows.items():
        lines.append(after.ljust(16) + "".join(f"{100 * scores.get(name, float('nan')):16.1f}" for name in datasets))
    return "\n".join(lines)


@dataclass(frozen=True)
class StageRun:
    """How :func:`train_stage` runs one stage of a recipe."""

    name: str  # the stage's name in logs
    steps: int  # optimizer steps of the stage
    first_step: int  # global step before the stage's first step (logs and checkpoint names)
    output_dir: Path  # the recipe's output folder (checkpoints/ below it)
    log_every: int
    checkpoint_every: int
    keep_checkpoints: int
    max_grad_norm: float | None = None  # gradient clipping; None = none


def train_stage(accelerator: Accelerator, model: torch.nn.Module, optimizer, scheduler, loader, progress: Progress,
                run: StageRun, loss_of: Callable[[Any, int], torch.Tensor], *, steps_this_run: int,
                stop_after: int | None) -> tuple[int, bool]:
    """Optimise from ``progress.step`` to ``run.steps`` (resuming mid-epoch: the loader's order depends only on
    the epoch, so the batches already seen are skipped), logging the mean loss every ``log_every`` steps and
    checkpointing every ``checkpoint_every``.

    Args:
        loss_of: ``(batch, step) -> loss``, called under autocast.
        steps_this_run: optimizer steps this call of the recipe has done before the stage.
        stop_after: checkpoint and stop after this many steps of this call of the recipe.

    Returns:
        ``(steps_this_run, stopped)``: stopped is True when ``stop_after`` was reached (a checkpoint was saved).
    """
    step, losses = progress.step, []
    while step < run.steps:
        epoch, done_in_epoch = divmod(step, len(loader))
        loader.set_epoch(epoch)  # reaches the sampler and the dataset's clip / augmentation draws
        batches = accelerator.skip_first_batches(loader, done_in_epoch) if done_in_epoch else loader
        for batch in batches:
            with accelerator.autocast():
                loss = loss_of(batch, step)
            accelerator.backward(loss)
            if run.max_grad_norm is not None:
                accelerator.clip_grad_norm_(model.parameters(), run.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step, steps_this_run = step + 1, steps_this_run + 1
            progress.step = step
            losses.append(accelerator.reduce(loss.detach(), "mean").item())
            if step % run.log_every == 0 or step == run.steps:
                accelerator.log({"loss": float(np.mean(losses)), "lr": scheduler.get_last_lr()[-1]},  # the heads'
                                step=run.first_step + step)
                accelerator.print(f"[{run.name}] step {step}/{run.steps} loss {np.mean(losses):.4f}")
                losses = []
            if (step % run.checkpoint_every == 0 and step < run.steps) or steps_this_run == stop_after:
                save_checkpoint(accelerator, run.output_dir, progress, run.first_step + step,
                                keep=run.keep_checkpoints)
            if steps_this_run == stop_after:
                return steps_this_run, True
            if step == run.steps:
                break
    return steps_this_run, False
