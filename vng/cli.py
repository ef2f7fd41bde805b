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


if __name__ == "__main__":
    app()
