"""Dataflow workers get the package from ``--setup_file ./setup.py``: check what ships.

``devtools`` (the code behind scripts/, the Firestore index generator included) is for a
development checkout only: the editable install makes it importable, the sdist and the
wheel leave it out. ``f2bq_analytics`` is for the app's backend: it imports without
Apache Beam, which only the ``sync`` extra installs.
"""

from __future__ import annotations

import email
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

from devtools import REPO_ROOT


def _files(*patterns: str) -> set[str]:
    return {
        p.relative_to(REPO_ROOT).as_posix()
        for pattern in patterns
        for p in REPO_ROOT.glob(pattern)
        if "__pycache__" not in p.parts
    }


def _expected() -> set[str]:
    """What workers need (every module of the sync, every schema), and the analytics."""
    shipped = _files(
        "pipelines/**/*.py", "schemas/*", "f2bq_analytics/**/*.py", "f2bq_analytics/sql/**/*.sql"
    )
    assert any(p.startswith("schemas/") for p in shipped)  # whatever the app declares
    assert {
        "pipelines/firestore_to_bq.py",
        "pipelines/transforms/write_bigquery.py",
        "f2bq_analytics/analytics.py",
        "f2bq_analytics/sql/user_analytics.sql",
        "f2bq_analytics/sql/views/daily_user_activity.sql",
    } <= shipped
    return shipped


def _wheel(tmp_path: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("*.whl")
    return wheel


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
    # The index generator is a deploy step's (devtools/), not the workers'.
    assert not [n for n in names if n.endswith("/firestore_indexes.py") and "tests/" not in n]


def test_wheel_has_every_module_and_schema(tmp_path: Path):
    wheel = _wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert _expected() <= names
    assert not [n for n in names if n.startswith("devtools/")]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    with zipfile.ZipFile(wheel) as zf:
        assert "firestore-to-bq = pipelines.cli.console:main" in zf.read(entry_points).decode()


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


def test_only_the_sync_extra_installs_apache_beam(tmp_path: Path):
    """The backend's `pip install firestore-to-bigquery[analytics]` brings no Beam."""
    with zipfile.ZipFile(_wheel(tmp_path)) as zf:
        metadata = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        message = email.message_from_bytes(zf.read(metadata))
    requires = message.get_all("Requires-Dist") or []
    extras = set(message.get_all("Provides-Extra") or [])
    assert {"sync", "analytics", "dev"} <= extras
    beam = [r for r in requires if r.startswith("apache-beam")]
    assert beam and all('extra == "sync"' in r or 'extra == "dev"' in r for r in beam), beam
    assert any(r.startswith("google-cloud-bigquery") and "extra" not in r for r in requires)


def test_the_analytics_import_and_run_their_command_line_without_apache_beam():
    """With every ``apache_beam`` import refused, the analytics load, build their SQL and
    answer ``--help``: the app's backend does not need Beam installed."""
    script = textwrap.dedent(
        """
        import runpy, sys

        class NoBeam:
            def find_spec(self, name, path=None, target=None):
                if name == "apache_beam" or name.startswith("apache_beam."):
                    raise ImportError("apache_beam is blocked")

        sys.meta_path.insert(0, NoBeam())
        from f2bq_analytics import Analytics, AsyncAnalytics
        from f2bq_analytics.analytics import QUERIES, VIEWS
        for sql in [*QUERIES.values(), *VIEWS]:
            assert "`p.d." in sql.text("p", "d"), sql.name
        assert "apache_beam" not in sys.modules
        sys.argv = ["f2bq_analytics", "--help"]
        try:
            runpy.run_module("f2bq_analytics", run_name="__main__")
        except SystemExit as exit:
            assert exit.code == 0, exit.code
        print("no beam:", sorted(m for m in sys.modules if m.startswith("apache_beam")))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "no beam: []" in done.stdout
    assert "python -m f2bq_analytics" in done.stdout  # the --help text


def test_the_console_script_without_beam_says_which_extra_to_install():
    code = (
        "import sys; sys.modules['apache_beam'] = None\n"  # as if [sync] were not installed
        "from pipelines.cli.console import main; sys.exit(main())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: the sync needs Apache Beam, which is not installed: "
        "pip install 'firestore-to-bigquery[sync]'"
    ]


def test_the_backfill_is_a_command_of_the_installed_package(tmp_path: Path):
    """``firestore-to-bq backfill --help`` from the wheel alone (issue 24): the command the
    refusals print is in the package, not only in a checkout's ``scripts/``."""
    wheel = _wheel(tmp_path / "wheel")
    installed = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(installed)
    code = (
        f"import sys; sys.path.insert(0, {str(installed)!r}); sys.argv = ['firestore-to-bq', "
        "'backfill', '--help']\n"
        "import pipelines; assert pipelines.__file__.startswith(sys.path[0]), pipelines.__file__\n"
        "from pipelines.cli.console import main; sys.exit(main())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: firestore-to-bq backfill --start_date D"), done.stdout
    assert "--chunk_days" in done.stdout and "--mode incremental" in done.stdout
