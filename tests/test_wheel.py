"""An installed wheel works on its own: recipes and reproduction settings ship inside the package.

The wheel is built from this checkout, installed with pip into a fresh virtual environment outside it, and run from
another folder: ``innerworks train quick`` and ``innerworks repro wide --quick``. The fresh environment borrows the
test environment's third-party packages (torch, numpy, ...) through a ``.pth`` line, which adds that folder to
``sys.path`` without running its ``.pth`` files, so the checkout's editable install stays out of reach.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode in (0, 1), f"{cmd}: exit {res.returncode}\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    return res


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w",
          str(base / "dist")], cwd=base, env=env)
    wheels = list((base / "dist").glob("innerworks-*.whl"))
    assert len(wheels) == 1, wheels
    target = base / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    py = target / "bin" / "python"
    purelib = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                           text=True).strip())
    (purelib / "borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
          str(wheels[0])], cwd=base, env=env)
    return target, env


def test_the_wheel_ships_recipes_and_settings(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    target, env = installed
    code = ("import innerworks, json; from innerworks.train.config import builtin_recipes; "
            "from innerworks.repro.base import settings_dir; "
            "print(json.dumps([innerworks.__file__, len(builtin_recipes()), "
            "sorted(p.name for p in settings_dir().glob('*.yaml'))]))")
    out = json.loads(_run([str(target / "bin" / "python"), "-c", code], cwd=tmp_path, env=env).stdout)
    assert out[0].startswith(str(target)), out[0]  # the installed copy, not the checkout
    assert out[1] == len(list((REPO / "src" / "innerworks" / "recipes").rglob("*.yaml")))
    assert {"integration_quick.yaml", "attention_quick.yaml", "wide_quick.yaml", "wide_full.yaml"} <= set(out[2])


def test_train_and_repro_from_another_folder(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    target, env = installed
    cli = str(target / "bin" / "innerworks")
    res = _run([cli, "train", "quick", "--out", str(tmp_path / "run"), "--quiet"], cwd=tmp_path, env=env)
    assert res.returncode == 0 and "test accuracy" in res.stdout
    assert (tmp_path / "run" / "model.safetensors").is_file()
    res = _run([cli, "repro", "wide", "--quick", "--out", str(tmp_path / "wide"), "--quiet"], cwd=tmp_path, env=env)
    doc = json.loads((tmp_path / "wide" / "results.json").read_text())
    assert doc["name"] == "wide" and len(doc["claims"]) >= 10
    assert doc["config"]["settings_file"].startswith(str(target))
    assert ("claims passed" in res.stdout) and res.returncode == (0 if doc["all_passed"] else 1)
