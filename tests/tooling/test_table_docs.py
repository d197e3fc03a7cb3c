"""The generated blocks (docs/tables.md, docs/code-map.md, the README's options table) are
what scripts/gen_table_docs.py makes of the code."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from devtools import REPO_ROOT
from pipelines.cli.arguments import help_parser
from pipelines.convert.table_spec import SYNC_COLUMNS, load_specs
from pipelines.state import dead_letters, run_log

README = REPO_ROOT / "README.md"
TABLES = REPO_ROOT / "docs" / "tables.md"
#: The app's own schemas, which docs/tables.md documents (not the tests' example copy).
SCHEMAS = REPO_ROOT / "schemas"
CODE_MAP = REPO_ROOT / "docs" / "code-map.md"
SCRIPT = "scripts/gen_table_docs.py"


def check(root: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, SCRIPT, "--check", "--root", str(root)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def block(path: Path, name: str) -> str:
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"<!-- {name}:begin -->\n(.*?)<!-- {name}:end -->", text, re.S)
    assert match, f"{path.name} has no {name} block"
    return match.group(1)


def tables_in_docs() -> dict[str, str]:
    """The generated block's sections by table name; "sync": the sync columns."""
    text = block(TABLES, "tables")
    text = text.replace("Every table also has these sync columns", "## `sync`\n")
    parts = re.split(r"^## `([^`]+)`$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def column_rows(section: str) -> list[tuple[str, str, str]]:
    return re.findall(r"^\| `(\w+)` \| (\w+) \| (\w+) \|", section, re.M)


def copy_documents(root: Path) -> None:
    shutil.copy(README, root / "README.md")
    shutil.copytree(REPO_ROOT / "docs", root / "docs")


def test_the_documents_match_the_generator() -> None:
    done = check()
    assert done.returncode == 0, done.stderr


def test_a_stale_table_doc_fails_the_check_and_names_the_fix(tmp_path: Path) -> None:
    copy_documents(tmp_path)
    stale = tmp_path / "docs" / "tables.md"
    text = stale.read_text(encoding="utf-8")
    row = "| Firestore document path the row came from. |"  # a sync column: in every app
    assert row in text
    stale.write_text(text.replace(row, "| Planned duration. |", 1), encoding="utf-8")
    done = check(tmp_path)
    assert done.returncode == 1
    assert "docs/tables.md" in done.stderr
    assert f"run `.venv/bin/python {SCRIPT}`" in done.stderr
    assert "Planned duration" in stale.read_text(encoding="utf-8")  # --check writes nothing


def test_a_stale_options_table_fails_the_check(tmp_path: Path) -> None:
    copy_documents(tmp_path)
    readme = tmp_path / "README.md"
    text = readme.read_text(encoding="utf-8")
    assert "| `--num_splits` | `8` |" in text
    readme.write_text(text.replace("| `--num_splits` | `8` |", "| `--num_splits` | `16` |"))
    done = check(tmp_path)
    assert done.returncode == 1
    assert "README.md" in done.stderr


def test_the_options_table_lists_every_option_of_help_with_its_help_text() -> None:
    """What `firestore-to-bq --help` prints is what the README's table says."""
    rows = {
        name: (default, text)
        for names, default, text in re.findall(
            r"^\| (`[^|]+`) \| ([^|]*) \| (.*) \|$", block(README, "options"), re.M
        )
        for name in re.findall(r"`([^`]+)`", names)
    }
    for action in help_parser()._actions:
        for name in action.option_strings:
            assert name in rows, name
            assert " ".join((action.help or "").split()) in rows[name][1], name
            if action.default not in (None, "", False):
                assert rows[name][0] == f"`{action.default}`", name


def test_every_table_and_column_is_documented_with_its_type_and_mode() -> None:
    sections = tables_in_docs()
    expected = {name: spec.bigquery_schema() for name, spec in load_specs(SCHEMAS).items()}
    expected = {name: schema[: -len(SYNC_COLUMNS)] for name, schema in expected.items()}
    expected.update(
        {
            "sync": SYNC_COLUMNS,
            dead_letters.TABLE: dead_letters.SCHEMA,
            run_log.TABLE: run_log.SCHEMA,
        }
    )
    assert set(sections) == set(expected)
    for table, columns in expected.items():
        wanted = [(c["name"], c["type"], c["mode"]) for c in columns]
        assert column_rows(sections[table]) == wanted, table


def test_partitioning_clustering_and_change_field_are_stated() -> None:
    sections = tables_in_docs()
    for name, spec in load_specs(SCHEMAS).items():
        layout = sections[name]
        assert f"partitioned by `DAY({spec.partition_column})`" in layout
        assert "clustered by " + ", ".join(f"`{c}`" for c in spec.clustering) in layout
        if spec.change_field:
            assert f"change field `{spec.change_field}`" in layout
        else:
            assert "no change field" in layout
    assert f"Partitioned by `DAY({dead_letters.PARTITION_COLUMN})`" in sections["_dead_letters"]
    assert f"Partitioned by `DAY({run_log.PARTITION_COLUMN})`" in sections["_sync_runs"]


def test_the_code_map_names_every_module() -> None:
    code_map = block(CODE_MAP, "code-map")
    packages = [p.parent.relative_to(REPO_ROOT) for p in REPO_ROOT.glob("pipelines/*/__init__.py")]
    for folder in ("pipelines", *map(str, packages), "f2bq_analytics", "scripts", "devtools"):
        for path in sorted((REPO_ROOT / folder).glob("*")):
            if path.suffix in (".py", ".sh") and path.name != "__init__.py":
                # Links are relative to docs/, where the code map lives.
                assert f"[`{path.name}`](../{folder}/{path.name}) — " in code_map, path
    for path in (REPO_ROOT / "schemas").glob("*.json"):
        assert f"`{path.name}`" in code_map


def test_every_document_the_readme_links_exists_and_the_readme_fits_400_lines() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 400
    for page in ("design", "performance", "guarantees", "tables", "emulators", "code-map",
                 "deploy", "analytics"):  # fmt: skip
        assert f"](docs/{page}.md" in text, page
    for path in [README, *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            if not target.startswith(("http://", "https://")):
                assert (path.parent / target).exists(), f"{path.name}: {target}"
