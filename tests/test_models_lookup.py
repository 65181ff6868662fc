"""Where the real models are found (``models/`` in the repository, ``$TT_MODELS_DIR``
overrides), and how every entry point reports a bad model: one ``error:`` line on stderr,
exit status 2, no traceback, before any heavy work."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compiler import paths
from compiler.frontend import models
from compiler.frontend.tte_json import load_tte
from compiler.ir.errors import CompilerError, ModelFormatError, exit_on_error

REPO = paths.REPO
BOGUS = "no-such-model"


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != models.ENV_VAR}
    env.update(extra)
    return env


def _py(*args, env=None, cwd=REPO, timeout=60):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          env=env if env is not None else _env(), timeout=timeout)


def _one_error_line(p, *needles):
    err = p.stderr.strip()
    assert p.returncode == 2, (p.returncode, p.stdout[-2000:], err[-2000:])
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert "error: " in err, err
    for n in needles:
        assert n in err, (n, err)
    return err


# ---- lookup ------------------------------------------------------------------------------
def test_models_are_in_the_repository():
    d = REPO / "models"
    for name in models.REAL_MODELS:
        assert (d / f"{name}.json").is_file() and (d / f"{name}.npz").is_file()
    assert (d / "LICENSE").is_file() and (d / "README.md").is_file()
    files = [str(p.relative_to(REPO)) for p in d.iterdir()]
    ignored = subprocess.run(["git", "check-ignore", *files], cwd=REPO, capture_output=True,
                             text=True)
    assert ignored.stdout.strip() == "", f".gitignore excludes {ignored.stdout.split()}"


def test_default_lookup_is_the_repository_models_folder(monkeypatch):
    monkeypatch.delenv(models.ENV_VAR, raising=False)
    assert models.models_dir() == REPO / "models"
    assert models.resolve("mcunet-5fps") == REPO / "models" / "mcunet-5fps.json"


def test_lookup_needs_nothing_outside_the_repository(tmp_path):
    """A copy of the repository in a folder with no ../shared: the names resolve, load."""
    repo = tmp_path / "checkout" / "tinytrain"
    shutil.copytree(REPO / "compiler", repo / "compiler",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "models", repo / "models")
    assert not (repo.parent / "shared").exists()
    p = _py("-m", "compiler", "inspect", "mcunet-5fps", "--summary", cwd=repo)
    assert p.returncode == 0, p.stderr
    assert "mcunet-5fps" in p.stdout and "22.45M" in p.stdout
    p = _py("-c", "from compiler.frontend import models; print(models.resolve('mbv2-w0.35'))", cwd=repo)
    assert p.returncode == 0 and Path(p.stdout.strip()) == repo / "models" / "mbv2-w0.35.json"


def test_env_var_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv(models.ENV_VAR, str(tmp_path))
    assert models.models_dir() == tmp_path
    with pytest.raises(ModelFormatError, match=f"looked in {tmp_path}"):
        models.resolve("mcunet-5fps")          # the repository's copy is not used
    for ext in (".json", ".npz"):
        shutil.copy(REPO / "models" / f"mcunet-5fps{ext}", tmp_path)
    assert models.resolve("mcunet-5fps") == tmp_path / "mcunet-5fps.json"
    assert models.load("mcunet-5fps").name == "mcunet-5fps"


def test_name_of_and_default_build_folder():
    from compiler.cli.build import _default_out
    assert models.name_of("mbv2-w0.35") == "mbv2-w0.35"
    assert models.name_of("some/dir/net.onnx") == "net" == models.name_of("net.json")
    assert _default_out("stm32f746", "mbv2-w0.35") == Path("build/stm32f746/mbv2-w0.35")


# ---- bad models: every entry point ---------------------------------------------------------
ENTRY_POINTS = {
    "inspect": ["-m", "compiler", "inspect", BOGUS],
    "build": ["-m", "compiler", "build", BOGUS, "--board", "stm32f746"],
    "build --plan": ["-m", "compiler", "build", BOGUS, "--plan", "bench/plans/mcunet-5fps.json",
                     "--board", "stm32f746"],
    "run": ["-m", "compiler", "run", BOGUS, "--image", "chelsea"],
    "plan": ["-m", "compiler", "plan", BOGUS, "--data", "mnist", "--budget", "256KB"],
    "bench/forward.py": ["bench/forward.py", "--models", "mcunet-5fps", BOGUS],
    "bench/train_steps.py": ["bench/train_steps.py", "--models", BOGUS],
    "bench/sparse.py": ["bench/sparse.py", "--models", BOGUS],
    "bench/sparse.py --accuracy-models": ["bench/sparse.py", "--models", "mcunet-5fps",
                                          "--accuracy-models", BOGUS],
    "host.demo": ["-m", "host.demo", "--model", BOGUS],
}


@pytest.mark.parametrize("which", list(ENTRY_POINTS))
def test_unknown_model_is_one_error_line(which):
    p = _py(*ENTRY_POINTS[which], timeout=30)
    err = _one_error_line(p, f"unknown model {BOGUS!r}", "mcunet-5fps, mbv2-w0.35, proxyless-w0.3",
                          str(REPO / "models"), "TT_MODELS_DIR")
    assert err.startswith("error: unknown model")


@pytest.mark.parametrize("args", [["-m", "compiler", "inspect", "mcunet-5fps"],
                                  ["bench/train_accuracy.py", "--quick"]])
def test_missing_models_folder_is_one_error_line(args, tmp_path):
    p = _py(*args, env=_env(TT_MODELS_DIR=str(tmp_path)), timeout=30)
    _one_error_line(p, "unknown model 'mcunet-5fps'", f"looked in {tmp_path}")


def test_missing_model_file_is_one_error_line(tmp_path):
    p = _py("-m", "compiler", "build", str(tmp_path / "net.onnx"), timeout=30)
    _one_error_line(p, "model file not found", "net.onnx")


def test_stream_missing_expected_report_is_one_error_line(tmp_path):
    """host.stream names no model; what names the expected one is --expect-report."""
    p = _py("-m", "host.stream", "--port", "/dev/null", "--expect-report",
            str(tmp_path / "report.json"), timeout=30)
    _one_error_line(p, "report.json", "not found")


# ---- missing or corrupt .npz ---------------------------------------------------------------
def _model_copy(tmp_path: Path, npz: bytes | None, name="mcunet-5fps") -> Path:
    src = REPO / "models" / f"{name}.json"
    dst = tmp_path / f"{name}.json"
    shutil.copy(src, dst)
    if npz is not None:
        dst.with_suffix(".npz").write_bytes(npz)
    return dst


def _corruptions() -> dict[str, bytes]:
    good = (REPO / "models" / "mcunet-5fps.npz").read_bytes()
    bad_crc = bytearray(good)
    bad_crc[len(good) // 3:len(good) // 3 + 64] = bytes(64)
    return {"truncated": good[:len(good) // 2], "empty": b"", "garbage": b"not a zip" * 10,
            "bad-crc": bytes(bad_crc)}


@pytest.mark.parametrize("kind", list(_corruptions()))
def test_corrupt_npz_raises_model_format_error(kind, tmp_path):
    path = _model_copy(tmp_path, _corruptions()[kind])
    with pytest.raises(ModelFormatError, match="cannot read model arrays"):
        load_tte(path)


def test_missing_npz_raises_model_format_error(tmp_path):
    path = _model_copy(tmp_path, None)
    with pytest.raises(ModelFormatError, match="model arrays not found"):
        models.resolve(path)
    with pytest.raises(ModelFormatError, match="model arrays not found"):
        load_tte(path)


def test_corrupt_npz_is_one_error_line(tmp_path):
    _model_copy(tmp_path, _corruptions()["truncated"])
    env = _env(TT_MODELS_DIR=str(tmp_path))
    for args in (["-m", "compiler", "inspect", "mcunet-5fps"],
                 ["bench/forward.py", "--models", "mcunet-5fps"]):
        p = _py(*args, env=env, timeout=30)
        _one_error_line(p, str(tmp_path / "mcunet-5fps.npz"), "cannot read model arrays")


def test_missing_npz_is_one_error_line(tmp_path):
    path = _model_copy(tmp_path, None)
    p = _py("-m", "compiler", "inspect", str(path), timeout=30)
    _one_error_line(p, "model arrays not found", str(path.with_suffix(".npz")))


# ---- the helper ----------------------------------------------------------------------------
def test_exit_on_error_context_manager_and_decorator(capsys):
    with pytest.raises(SystemExit) as e:
        with exit_on_error():
            models.load(BOGUS)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: unknown model {BOGUS!r}") and err.count("\n") == 1

    @exit_on_error()
    def main():
        raise CompilerError("bad input")
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2 and capsys.readouterr().err == "error: bad input\n"

    with pytest.raises(KeyError):              # not an input error: passes through
        with exit_on_error():
            raise KeyError("bug")
