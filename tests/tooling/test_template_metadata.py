"""The committed Flex Template metadata and the pipeline's options must never drift apart."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from devtools import REPO_ROOT
from devtools import gen_template_metadata as gen
from pipelines.cli.options import SyncOptions

METADATA = REPO_ROOT / "deploy" / "metadata.json"


def pipeline_options() -> dict[str, str]:
    """Option name -> help, read from SyncOptions independently of the generator."""
    parser = argparse.ArgumentParser(add_help=False)
    SyncOptions._add_argparse_args(parser)
    return {a.dest: a.help for a in parser._actions if a.option_strings}


def committed() -> dict[str, dict]:
    params = json.loads(METADATA.read_text(encoding="utf-8"))["parameters"]
    names = [p["name"] for p in params]
    assert len(names) == len(set(names)), "a parameter is declared twice"
    return {p["name"]: p for p in params}


def test_parameters_are_exactly_the_pipeline_options_plus_dry_run() -> None:
    assert set(committed()) == set(pipeline_options()) | {"dry_run"}


def test_help_texts_match_argparse() -> None:
    params = committed()
    for name, help_text in pipeline_options().items():
        assert params[name]["helpText"] == help_text, name


def test_every_parameter_is_complete() -> None:
    for name, param in committed().items():
        assert param["label"] and param["helpText"], name
        assert isinstance(param["isOptional"], bool), name
    assert committed()["dataset"]["isOptional"] is False
    assert committed()["dry_run"]["isOptional"] is True


def test_committed_file_is_what_the_generator_writes() -> None:
    assert gen.main(["--check"]) == 0
    assert METADATA.read_text(encoding="utf-8") == gen.render(gen.build_metadata())


def test_check_fails_on_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "metadata.json"
    data = json.loads(METADATA.read_text(encoding="utf-8"))
    data["parameters"] = [p for p in data["parameters"] if p["name"] != "lookback_days"]
    stale.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    assert gen.main(["--check", "--output", str(stale)]) == 1
    assert "lookback_days" in capsys.readouterr().err

    assert gen.main(["--output", str(stale)]) == 0
    assert gen.main(["--check", "--output", str(stale)]) == 0


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("date", ["2026-11-24"], ["2026-1-24", "24-11-2026", "2026-11-24x", "yesterday"]),
        ("start_date", ["2026-01-01"], ["2026-01-01T00:00"]),
        ("end_date", ["2026-12-31"], [""]),
        ("dataset", ["app_analytics", "_x1"], ["app-analytics", "1abc", "a.b", "a;b"]),
        ("collections", ["tasks", "tasks,user_interactions", "tasks, routines"], [",", "a/b"]),
        ("lookback_days", ["0", "7"], ["-1", "1.5", "x"]),
        ("num_splits", ["8"], ["eight"]),
        ("load_batch_rows", ["50000"], ["5e4"]),
        ("firestore_retry_timeout", ["300", "2.5"], ["-1", "1e3"]),
        ("run_id", ["20261125T030000_ab12cd"], ["has-dash", "a" * 65]),
        ("dry_run", ["true", "false"], ["yes", "1"]),
        ("read_docs_per_second", ["2000", "2500.5"], ["-1", "2e3"]),
        ("mode", ["incremental", "full", "reconcile"], ["Full", "incremental,full", "", "fullx"]),
        ("max_catchup_days", ["7", "30"], ["-1", "seven"]),
        ("verify_days", ["0", "35"], ["-1", "3.5"]),
        ("allow_shrink", ["true", "false"], ["yes", "1", ""]),
    ],
)
def test_regexes_accept_and_reject(name: str, good: list[str], bad: list[str]) -> None:
    regexes = committed()[name]["regexes"]
    for value in good:
        assert all(re.search(r, value) for r in regexes), (name, value)
    for value in bad:
        assert not all(re.search(r, value) for r in regexes), (name, value)


def test_choices_and_flags_become_regexes_and_booleans() -> None:
    """Dataflow checks parameters before launching: a typo fails there, not in the job."""
    parser = argparse.ArgumentParser(add_help=False)
    SyncOptions._add_argparse_args(parser)
    params = committed()
    for action in parser._actions:
        if action.choices:
            regexes = params[action.dest]["regexes"]
            for choice in action.choices:
                assert all(re.search(r, choice) for r in regexes), (action.dest, choice)
        if isinstance(action.default, bool):
            assert params[action.dest]["paramType"] == "BOOLEAN", action.dest
            assert params[action.dest]["regexes"] == ["^(true|false)$"], action.dest
    assert params["mode"]["regexes"] == ["^(incremental|full|reconcile)$"]


def test_regexes_use_syntax_every_dialect_knows() -> None:
    """Dataflow validates with its own engine: no Python-only ``\\Z`` or named groups."""
    for name, param in committed().items():
        for pattern in param.get("regexes", []):
            assert r"\Z" not in pattern and "(?P" not in pattern, name
            assert pattern.startswith("^") and pattern.endswith("$"), name
