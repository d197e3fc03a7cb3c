"""``firestore-to-bq schema suggest``'s arguments: every mistake one line, exit 2, before
Firestore is asked anything (no server here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines import firestore_to_bq
from pipelines.cli import schema_suggest

BASE = ["--project", "p", "--path", "users/{user_id}/workouts"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--project", "p", "--path", "users/u1/workouts"],
         "error: --path 'users/u1/workouts': expected COLLECTION (a top-level collection) or "
         "PARENT/{user_id}/COLLECTION (a collection under each owner document)"),
        ([*BASE, "--sample", "0"], "error: --sample must be between 1 and 100000, got 0"),
        ([*BASE, "--table", "my-table"], "error: --table 'my-table' is not a BigQuery table name"),
        ([*BASE, "--smaple", "5"], "error: unknown option --smaple: did you mean --sample?"),
        ([*BASE, "--update", "/nonexistent/w.json"], "error: --update: cannot read "
         "/nonexistent/w.json"),
    ],
)  # fmt: skip
def test_bad_arguments_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert schema_suggest.main(argv) == 2
    assert capsys.readouterr() == ("", message + "\n")


def test_an_update_file_that_is_not_a_schema_of_that_collection(tmp_path: Path, capsys) -> None:
    (tmp_path / "w.json").write_text("[1, 2]")
    assert schema_suggest.main([*BASE, "--update", str(tmp_path / "w.json")]) == 2
    assert "holds no schema object" in capsys.readouterr().err
    (tmp_path / "w.json").write_text('{"table": "rides"}')
    assert schema_suggest.main([*BASE, "--update", str(tmp_path / "w.json")]) == 2
    assert capsys.readouterr().err == (
        f"error: --update: {tmp_path / 'w.json'} reads collection 'rides', not 'workouts' of "
        "--path\n"
    )


def test_it_is_wired_and_documented(capsys: pytest.CaptureFixture[str]) -> None:
    assert firestore_to_bq.main(["schema", "suggest", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--project", "--path", "--table", "--sample", "--out", "--update",
                   "--firestore_database"):  # fmt: skip
        assert option in out
    assert firestore_to_bq.main(["--help"]) == 0
    assert "firestore-to-bq schema suggest --project P --path" in capsys.readouterr().out
