"""What every training recipe (``recipes/*.py``) shares: where a multi-stage run is (:class:`Progress`, saved in each
checkpoint), Accelerate checkpoints that a killed run resumes from (:func:`save_checkpoint`,
:func:`latest_checkpoint`), the optimisation loop of one stage that resumes mid-epoch (:func:`train_stage`), a CSV
log that drops the rows a resumed run repeats (:class:`CSVTracker`), and the results table (:func:`format_results`).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from typing import Any, Callable

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.tracking import GeneralTracker

from vng.io.common import write_json

__all__ = ["CSVTracker", "Evaluation", "Progress", "StageRun", "format_results", "latest_checkpoint",
           "save_checkpoint", "train_stage"]


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
