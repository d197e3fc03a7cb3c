"""Nothing but the tests of the shipped files reads ``schemas/`` (issue 25, finding 5).

An adopter replaces ``schemas/`` with their own tables; the tests, the demo and the
benchmark are about the example app, so they read its fixture copy
(``tests/support/example_app/schemas``, ``devtools.EXAMPLE_SCHEMAS``) and keep working.
Copying the suite into a checkout with one custom schema and running it would prove it
but costs a full run; this reads the code instead: every test module, the demo and the
benchmark are parsed, and any code (not comments or docstrings) that reaches the
checkout's ``schemas/`` is refused outside the tests named below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from devtools import EXAMPLE_SCHEMAS, REPO_ROOT, example_app_env
from pipelines.convert.table_spec import SCHEMAS_DIR_ENV, load_specs
from tests.support import example_app

#: The tests of the shipped files themselves, and why each reads ``schemas/``.
SHIPPED_FILE_TESTS = {
    "tests/unit/convert/test_schema_check.py": "the shipped schemas pass schema check",
    "tests/tooling/test_firestore_indexes.py": "the committed index file is made from schemas/",
    "tests/tooling/test_table_docs.py": "docs/tables.md and the code map describe schemas/",
    "tests/tooling/test_packaging.py": "the wheel and the sdist carry schemas/",
    "tests/tooling/test_deploy_scripts.py": "the template build's default folder is schemas/",
    "tests/tooling/test_readme_dry_runs.py": "the deploy docs show the default, schemas/",
}
#: What the demo and the benchmark are made of.
EXAMPLE_APP_PROGRAMS = [
    REPO_ROOT / "scripts" / "demo.py",
    REPO_ROOT / "scripts" / "benchmark.py",
    REPO_ROOT / "devtools" / "sample_data.py",
    *sorted((REPO_ROOT / "devtools" / "bench").glob("*.py")),
]


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes of ``tree`` (module, classes, functions)."""
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                found.add(id(body[0].value))
    return found


def reads_shipped_schemas(source: str) -> list[str]:
    """The code of ``source`` that reaches the checkout's ``schemas/``: ``REPO_ROOT /
    "schemas"``, a ``"schemas/…"`` path, ``files("schemas")``, ``import schemas``, or
    unsetting ``F2BQ_SCHEMAS_DIR`` (every command then falls back to ``schemas/``)."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            if (
                isinstance(node.right, ast.Constant)
                and node.right.value == "schemas"
                and "REPO_ROOT" in ast.unparse(node.left)
            ):
                found.append(ast.unparse(node))
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        ):
            if node.value.startswith(("schemas/", "./schemas")):
                found.append(repr(node.value))
        elif isinstance(node, ast.Call):
            call = ast.unparse(node)
            if call.endswith(("files('schemas')", 'files("schemas")')):
                found.append(call)
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            names = ("SCHEMAS_DIR_ENV", SCHEMAS_DIR_ENV)
            if name in ("delenv", "pop", "unsetenv") and any(
                n in ast.unparse(arg) for arg in node.args for n in names
            ):
                found.append(call)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if "schemas" in modules or getattr(node, "module", None) == "schemas":
                found.append(ast.unparse(node))
    return found


def _relative(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


@pytest.mark.parametrize(
    "path", sorted((REPO_ROOT / "tests").rglob("*.py")), ids=lambda p: _relative(p)
)
def test_only_the_tests_of_the_shipped_files_read_schemas(path: Path) -> None:
    if _relative(path) in SHIPPED_FILE_TESTS or path == Path(__file__).resolve():
        return  # (this module's own examples are strings it checks)
    found = reads_shipped_schemas(path.read_text(encoding="utf-8"))
    assert not found, f"{_relative(path)} reads the checkout's schemas/: {found}"


@pytest.mark.parametrize("path", EXAMPLE_APP_PROGRAMS, ids=lambda p: _relative(p))
def test_the_demo_and_the_benchmark_never_read_schemas(path: Path) -> None:
    assert not reads_shipped_schemas(path.read_text(encoding="utf-8"))


def test_the_demo_and_the_benchmark_point_every_command_at_the_example_app() -> None:
    """Both start emulators and runs of the sync; their ``main`` sets the variable first."""
    for path in (REPO_ROOT / "scripts" / "demo.py", REPO_ROOT / "devtools" / "bench" / "cli.py"):
        assert "example_app_env()" in path.read_text(encoding="utf-8"), path
    assert example_app_env() == {SCHEMAS_DIR_ENV: str(EXAMPLE_SCHEMAS)}
    assert EXAMPLE_SCHEMAS == example_app.SCHEMAS
    assert set(load_specs(EXAMPLE_SCHEMAS)) == {
        "emotional_memories", "projects", "routines", "tasks", "user_interactions",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ('p = REPO_ROOT / "schemas"', True),
        ('p = REPO_ROOT / "docs" / "schemas.md"', False),
        ('open("schemas/tasks.json")', True),
        ('resources.files("schemas")', True),
        ("import schemas", True),
        ("monkeypatch.delenv(SCHEMAS_DIR_ENV, raising=False)", True),
        ("env.pop(SCHEMAS_DIR_ENV, None)", True),
        ('x = tmp_path / "schemas"', False),
        ('"""Reads schemas/ (a docstring)."""', False),
        ('run("--schemas_dir", str(example_app.SCHEMAS))', False),
    ],
)
def test_the_check_sees_each_way_of_reading_schemas(source: str, found: bool) -> None:
    assert bool(reads_shipped_schemas(source)) is found


@pytest.mark.parametrize("relative", sorted(SHIPPED_FILE_TESTS))
def test_every_exception_still_reads_schemas(relative: str) -> None:
    """The list stays as short as the code: an entry that no longer reads it goes."""
    assert reads_shipped_schemas((REPO_ROOT / relative).read_text(encoding="utf-8"))
