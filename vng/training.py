"""What every training recipe (``recipes/*.py``) shares: where a multi-stage run is (:class:`Progress`, saved in each
checkpoint), Accelerate checkpoints that a killed run resumes from (:func:`save_checkpoint`,
:func:`latest_checkpoint`), a CSV log that drops the rows a resumed run repeats (:class:`CSVTracker`), and the
results table (:func:`format_results`).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from accelerate import Accelerator
from accelerate.tracking import GeneralTracker

from vng.io.common import write_json

__all__ = ["CSVTracker", "Evaluation", "Progress", "format_results", "latest_checkpoint", "save_checkpoint"]


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
