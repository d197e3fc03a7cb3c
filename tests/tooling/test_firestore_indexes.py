"""Firestore indexes for incremental reads: generated from schemas/, committed, and deployed."""

from __future__ import annotations

import json
import os
import shlex
import stat
from pathlib import Path

import pytest

from devtools import REPO_ROOT
from devtools import create_firestore_indexes as create
from devtools.firestore_indexes import DEFAULT_INDEXES, GROUP_INDEX, index_config, render
from pipelines.convert.table_spec import load_specs
from tests.support import example_app

INDEX_FILE = REPO_ROOT / "deploy" / "firestore.indexes.json"
SCHEMAS = REPO_ROOT / "schemas"
ARGS = ["--project", "my-proj"]

#: What an incremental run filters on today, written out so a schema change shows here.
PAIRS = [
    ("interactions", "timestamp"),
    ("memories", "timestamp"),
    ("projects", "created_at"),
    ("projects", "updated_at"),
    ("routines", "created_at"),
    ("routines", "updated_at"),
    ("tasks", "created_at"),
    ("tasks", "updated_at"),
]
INDEX_FLAGS = (
    "--index=order=ascending,query-scope=collection "
    "--index=order=descending,query-scope=collection "
    "--index=array-config=contains,query-scope=collection "
    "--index=order=ascending,query-scope=collection-group"
)
DRY_RUN = [
    f"gcloud firestore indexes fields update {field} --collection-group={group} {INDEX_FLAGS} "
    "--project my-proj --database '(default)'"
    for group, field in PAIRS
]


def range_fields(directory: Path | None = None) -> set[tuple[str, str]]:
    """(collection group, field) of every range an incremental query filters on: of the
    schemas in ``directory``, or of the example app's (the tests' default)."""
    return {(s.collection, f) for s in load_specs(directory).values() for f in s.range_fields}


def test_every_range_field_has_a_collection_group_index_in_the_file() -> None:
    overrides = json.loads(INDEX_FILE.read_text(encoding="utf-8"))["fieldOverrides"]
    grouped = {
        (o["collectionGroup"], o["fieldPath"]) for o in overrides if GROUP_INDEX in o["indexes"]
    }
    assert range_fields(SCHEMAS) <= grouped  # the committed file covers the app's schemas
    assert range_fields() == set(PAIRS)  # the example app's, written out


def test_every_override_keeps_firestores_default_indexes() -> None:
    """An override replaces the defaults: dropping them would break the app's own queries."""
    for override in index_config(load_specs().values())["fieldOverrides"]:
        assert override["indexes"] == [*DEFAULT_INDEXES, GROUP_INDEX], override["fieldPath"]


def test_committed_file_is_what_the_generator_writes() -> None:
    """The committed file is the app's own: generated from ``schemas/``."""
    assert create.main(["--check_file", "--schemas_dir", str(SCHEMAS)]) == 0
    assert INDEX_FILE.read_text(encoding="utf-8") == render(
        index_config(load_specs(SCHEMAS).values())
    )


def test_check_fails_on_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "firestore.indexes.json"
    data = json.loads(INDEX_FILE.read_text(encoding="utf-8"))
    data["fieldOverrides"] = [o for o in data["fieldOverrides"] if o["fieldPath"] != "updated_at"]
    stale.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    assert create.main(["--check_file", "--output", str(stale)]) == 1
    assert "updated_at" in capsys.readouterr().err

    assert create.main(["--write_file", "--output", str(stale)]) == 0
    assert create.main(["--check_file", "--output", str(stale)]) == 0


def test_dry_run_prints_one_update_per_range_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert create.main([*ARGS, "--dry_run"]) == 0
    lines = capsys.readouterr().out.splitlines()

    assert lines == DRY_RUN
    updated = set()
    for line in lines:
        words = shlex.split(line)
        group = next(w.split("=", 1)[1] for w in words if w.startswith("--collection-group="))
        assert "--index=order=ascending,query-scope=collection-group" in words
        updated.add((group, words[5]))
    assert updated == range_fields()


def test_dry_run_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert create.main([*ARGS, "--database", "analytics-db", "--async", "--dry_run"]) == 0
    for line in capsys.readouterr().out.splitlines():
        assert line.endswith(" --project my-proj --database analytics-db --async")


def test_schemas_without_range_fields_need_no_override(tmp_path: Path) -> None:
    """A DATE partition cannot be range-read (full runs only): nothing to index for it."""
    for name in ("tasks.json", "routines.json"):
        raw = json.loads((example_app.SCHEMAS / name).read_text(encoding="utf-8"))
        if name == "routines.json":
            raw["fields"] = [
                {**f, "type": "DATE"} if f["name"] == raw["partition_column"] else f
                for f in raw["fields"]
            ]
        (tmp_path / name).write_text(json.dumps(raw), encoding="utf-8")

    args = create.parse_args([*ARGS, "--schemas_dir", str(tmp_path)])

    assert [(c[6], c[5]) for c in create.commands(args)] == [
        ("--collection-group=tasks", "created_at"),
        ("--collection-group=tasks", "updated_at"),
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["--dry_run"],
        ["--project", "My Proj", "--dry_run"],
        [*ARGS, "--database", "bad db", "--dry_run"],
        [*ARGS, "--schemas_dir", "/nonexistent", "--dry_run"],
    ],
)
def test_bad_arguments_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert create.main(argv) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_write_and_check_exclude_each_other() -> None:
    with pytest.raises(SystemExit) as exited:
        create.main(["--write_file", "--check_file"])
    assert exited.value.code == 2


FAKE_GCLOUD = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
sys.exit(1 if os.environ.get("FAKE_FAIL") and sys.argv[6] == os.environ["FAKE_FAIL"] else 0)
"""


@pytest.fixture
def fake_gcloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``gcloud`` on PATH that records its calls and fails on the group ``$FAKE_FAIL``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(FAKE_GCLOUD)
    gcloud.chmod(gcloud.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    return log


def calls(log: Path) -> list[str]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [shlex.join(["gcloud", *json.loads(line)]) for line in lines]


def test_real_run_runs_the_dry_run_commands_in_order(fake_gcloud: Path) -> None:
    assert create.main(ARGS) == 0
    assert calls(fake_gcloud) == DRY_RUN


def test_real_run_stops_at_the_first_failure(
    fake_gcloud: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_FAIL", "--collection-group=projects")
    assert create.main(ARGS) == 1
    assert calls(fake_gcloud) == DRY_RUN[:3]


def test_dry_run_calls_nothing(fake_gcloud: Path) -> None:
    assert create.main([*ARGS, "--dry_run"]) == 0
    assert calls(fake_gcloud) == []
