"""Dataflow workers get the package from ``--setup_file ./setup.py``: check what ships.

``devtools`` (the code behind scripts/) is for a development checkout only: the editable
install makes it importable, the sdist and the wheel leave it out.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _expected() -> set[str]:
    modules = {p.relative_to(REPO_ROOT).as_posix() for p in REPO_ROOT.glob("pipelines/**/*.py")}
    schemas = {p.relative_to(REPO_ROOT).as_posix() for p in REPO_ROOT.glob("schemas/*")}
    assert {"schemas/tasks.json", "pipelines/firestore_to_bq.py"} <= modules | schemas
    return {m for m in modules | schemas if "__pycache__" not in m}


def test_sdist_as_beam_builds_it_has_every_module_and_schema(tmp_path: Path):
    # Beam's stager runs exactly this for --setup_file.
    subprocess.run(
        [sys.executable, "setup.py", "sdist", "--dist-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (archive,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert _expected() <= names
    assert not [n for n in names if n.startswith("devtools/")]


def test_wheel_has_every_module_and_schema(tmp_path: Path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert _expected() <= names
    assert not [n for n in names if n.startswith("devtools/")]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    with zipfile.ZipFile(wheel) as zf:
        assert "firestore-to-bq = pipelines.firestore_to_bq:main" in zf.read(entry_points).decode()


def test_the_editable_install_imports_devtools_from_the_checkout():
    done = subprocess.run(
        [sys.executable, "-c", "import devtools.emulators as m; print(m.__file__)"],
        cwd="/",  # not the checkout: the import must come from the install, not the cwd
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert Path(done.stdout.strip()) == REPO_ROOT / "devtools" / "emulators.py"
