"""The README's table docs and code map are what scripts/gen_table_docs.py makes of the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pipelines import audit, dead_letters
from pipelines.table_spec import SYNC_COLUMNS, load_specs

REPO_ROOT = Path(__file__).resolve().parent.parent
README = REPO_ROOT / "README.md"
SCRIPT = "scripts/gen_table_docs.py"


def check(readme: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, SCRIPT, "--check", "--readme", str(readme)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def block(text: str, name: str) -> str:
    match = re.search(rf"<!-- {name}:begin -->\n(.*?)<!-- {name}:end -->", text, re.S)
    assert match, f"README.md has no {name} block"
    return match.group(1)


def tables_in_readme() -> dict[str, str]:
    """The generated block's sections by table name; "sync": the sync columns."""
    text = block(README.read_text(encoding="utf-8"), "tables")
    text = text.replace("Every table also has these sync columns", "#### `sync`\n")
    parts = re.split(r"^#### `([^`]+)`$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def column_rows(section: str) -> list[tuple[str, str, str]]:
    return re.findall(r"^\| `(\w+)` \| (\w+) \| (\w+) \|", section, re.M)


def test_readme_matches_the_generator() -> None:
    done = check(README)
    assert done.returncode == 0, done.stderr


def test_a_stale_readme_fails_the_check_and_names_the_fix(tmp_path: Path) -> None:
    stale = tmp_path / "README.md"
    text = README.read_text(encoding="utf-8")
    assert "| Planned length. |" in text
    stale.write_text(text.replace("| Planned length. |", "| Planned duration. |"), encoding="utf-8")
    done = check(stale)
    assert done.returncode == 1
    assert f"run `.venv/bin/python {SCRIPT}`" in done.stderr
    assert stale.read_text(encoding="utf-8") != text  # --check writes nothing


def test_every_table_and_column_is_documented_with_its_type_and_mode() -> None:
    sections = tables_in_readme()
    expected = {name: spec.bigquery_schema() for name, spec in load_specs().items()}
    expected = {name: schema[: -len(SYNC_COLUMNS)] for name, schema in expected.items()}
    expected.update(
        {"sync": SYNC_COLUMNS, dead_letters.TABLE: dead_letters.SCHEMA, audit.TABLE: audit.SCHEMA}
    )
    assert set(sections) == set(expected)
    for table, columns in expected.items():
        wanted = [(c["name"], c["type"], c["mode"]) for c in columns]
        assert column_rows(sections[table]) == wanted, table


def test_partitioning_clustering_and_change_field_are_stated() -> None:
    sections = tables_in_readme()
    for name, spec in load_specs().items():
        layout = sections[name]
        assert f"partitioned by `DAY({spec.partition_column})`" in layout
        assert "clustered by " + ", ".join(f"`{c}`" for c in spec.clustering) in layout
        if spec.change_field:
            assert f"change field `{spec.change_field}`" in layout
        else:
            assert "no change field" in layout
    assert f"Partitioned by `DAY({dead_letters.PARTITION_COLUMN})`" in sections["_dead_letters"]
    assert f"Partitioned by `DAY({audit.PARTITION_COLUMN})`" in sections["_sync_runs"]


def test_the_code_map_names_every_module() -> None:
    code_map = block(README.read_text(encoding="utf-8"), "code-map")
    for folder in ("pipelines", "pipelines/transforms", "scripts"):
        for path in sorted((REPO_ROOT / folder).glob("*")):
            if path.suffix in (".py", ".sh") and path.name != "__init__.py":
                assert f"[`{path.name}`]({folder}/{path.name}) — " in code_map, path
    for path in (REPO_ROOT / "schemas").glob("*.json"):
        assert f"`{path.name}`" in code_map
