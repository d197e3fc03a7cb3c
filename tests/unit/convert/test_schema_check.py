"""``firestore-to-bq schema check`` and the schema errors the sync reports (issue 25, finding 1).

Unit tests, no server. Each error case writes its own schema files under
``tmp_path``; only the tests named for them read the shipped ``schemas/`` or
``docs/schemas.md``.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from devtools import REPO_ROOT
from pipelines import firestore_to_bq
from pipelines.cli import schema_check
from pipelines.convert.table_spec import (
    SYNC_COLUMNS,
    TYPE_ALIASES,
    SchemaError,
    check_specs,
    load_specs,
    parse_spec,
)
from tests.support import example_app

DOC = REPO_ROOT / "docs" / "schemas.md"

WORKOUTS: dict[str, Any] = {
    "table": "workouts",
    "source": {"collection": "workouts"},
    "id_column": "workout_id",
    "partition_column": "started_at",
    "change_field": "updated_at",
    "clustering": ["user_id"],
    "fields": [
        {"name": "user_id", "type": "STRING", "mode": "REQUIRED"},
        {"name": "workout_id", "type": "STRING", "mode": "REQUIRED"},
        {"name": "started_at", "type": "TIMESTAMP", "mode": "REQUIRED"},
        {"name": "updated_at", "type": "TIMESTAMP"},
        {"name": "distance_km", "type": "FLOAT64"},
    ],
}


def workouts(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(WORKOUTS)
    raw.update(copy.deepcopy(changes))
    return raw


def write(folder: Path, name: str, content: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = content if isinstance(content, str) else json.dumps(content, indent=2)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def problems_of(raw: Any) -> list[str]:
    """The lines parse_spec (the sync's loader) reports for ``raw``."""
    with pytest.raises(SchemaError) as info:
        parse_spec(raw, "workouts.json")
    assert "\n" not in str(info.value)  # usage errors are one line
    lines = [str(p) for p in info.value.problems]
    for line in lines:
        assert line in str(info.value)
    return lines


def run_check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = schema_check.main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------------------
# Every error of every file at once
# --------------------------------------------------------------------------------------


def test_two_broken_files_show_every_error_at_once_with_file_and_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = workouts(chnage_field="updated_at", clusterng=["user_id"])
    del broken["change_field"], broken["clustering"]
    broken["fields"][4] = {"name": "laps", "type": "RECORD", "fields": []}
    broken["fields"].append({"name": "kind", "polcy": "drop"})
    write(tmp_path, "workouts.json", broken)
    write(tmp_path, "sets.json", {"table": "sets", "fields": {"set_id": "STRING"}})
    write(tmp_path, "fine.json", workouts(table="fine"))

    code, out, err = run_check(capsys, "--schemas_dir", str(tmp_path))

    assert code == 2 and out == ""
    lines = err.splitlines()
    expected = [
        "sets.json: missing key 'id_column': ",
        "sets.json: missing key 'partition_column': ",
        "sets.json: fields: must be a list of columns",
        "workouts.json: chnage_field: unknown key (did you mean 'change_field'?)",
        "workouts.json: clusterng: unknown key (did you mean 'clustering'?)",
        "workouts.json: fields[4].fields: a RECORD column needs \"fields\"",
        "workouts.json: fields[5]: missing key 'type': ",
        "workouts.json: fields[5].polcy: unknown key (did you mean 'policy'?)",
    ]
    for start in expected:
        assert sum(line.startswith(start) for line in lines) == 1, (start, err)
    assert len(lines) == len(expected) + 1, err
    assert lines[-1] == "schema check: 8 errors in 2 files; see docs/schemas.md"
    assert "fine.json" not in err


def test_the_sync_loader_reports_every_error_of_every_file_in_one_line(tmp_path: Path) -> None:
    write(tmp_path, "a.json", workouts(table="a", partition_column="ghost"))
    write(tmp_path, "b.json", workouts(table="b", clusterng=[]))
    with pytest.raises(SchemaError) as info:
        load_specs(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("a.json: partition_column: column 'ghost' is referenced but not")
    assert " | b.json: clusterng: unknown key (did you mean 'clustering'?)" in message
    assert message.endswith("(2 schema errors; firestore-to-bq schema check lists them one a line)")
    assert [(p.origin, p.path) for p in info.value.problems] == [
        ("a.json", "partition_column"),
        ("b.json", "clusterng"),
    ]


def test_every_error_of_one_file_not_only_the_first() -> None:
    raw = workouts(table="bad name")
    raw["fields"][4]["type"] = "DECIMAL"
    raw["fields"].append({"name": "x", "type": "STRING", "mode": "OPTIONAL"})
    lines = problems_of(raw)
    assert [line.split(": ")[1] for line in lines] == [
        "table",
        "fields[4].type",
        "fields[5].mode",
    ]


# --------------------------------------------------------------------------------------
# Unknown keys: errors, with the closest known key (old code ignored them silently)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typo", "key"),
    [("chnage_field", "change_field"), ("clusterng", "clustering"), ("feild_map", "field_map")],
)
def test_a_typo_in_an_optional_key_is_an_error_with_did_you_mean(typo: str, key: str) -> None:
    raw = workouts()
    raw[typo] = raw.pop(key, {})
    (line,) = problems_of(raw)
    assert line.startswith(f"workouts.json: {typo}: unknown key (did you mean {key!r}?); allowed: ")
    assert "change_field" in line and "clustering" in line and "fields" in line


def test_a_typo_in_a_required_key_names_the_key_its_purpose_and_the_misspelling() -> None:
    raw = workouts()
    raw["partiton_column"] = raw.pop("partition_column")
    lines = problems_of(raw)
    assert lines == [
        "workouts.json: partiton_column: unknown key (did you mean 'partition_column'?); "
        "allowed: table, description, source, id_column, partition_column, change_field, "
        "clustering, field_map, fields",
        "workouts.json: missing key 'partition_column': the TIMESTAMP or DATE column whose UTC "
        "day partitions the table ('partiton_column' is there: misspelt?)",
    ]


@pytest.mark.parametrize(
    ("key", "purpose"),
    [
        ("table", "the BigQuery table name"),
        ("id_column", "receives each document's id"),
        ("partition_column", "whose UTC day partitions the table"),
        ("fields", "the columns"),
    ],
)
def test_a_missing_required_key_says_what_it_is_for(key: str, purpose: str) -> None:
    raw = workouts()
    del raw[key]
    lines = problems_of(raw)
    assert any(line.startswith(f"workouts.json: missing key {key!r}: ") for line in lines)
    assert purpose in lines[0] + "".join(lines)


def test_unknown_keys_in_source_and_in_fields() -> None:
    raw = workouts(source={"collection": "workouts", "layuot": "top_level"})
    raw["fields"][4]["polcy"] = "drop"
    raw["fields"][4]["alowed_values"] = ["1"]
    lines = problems_of(raw)
    assert lines[0] == (
        "workouts.json: source.layuot: unknown key (did you mean 'layout'?); "
        "allowed: collection, layout, parent_collection"
    )
    assert lines[1].startswith("workouts.json: fields[4].polcy: unknown key (did you mean 'policy'")
    assert "(did you mean 'allowed_values'?)" in lines[2]
    assert len(lines) == 3


def test_keys_bigquerys_json_schema_defines_are_accepted_on_fields() -> None:
    raw = workouts()
    raw["fields"][4].update(
        policyTags={"names": ["projects/p/locations/eu/taxonomies/1/policyTags/2"]},
        maxLength=10,
        precision=5,
        scale=2,
        roundingMode="ROUND_HALF_EVEN",
        defaultValueExpression="0",
        collation="und:ci",
        rangeElementType={"type": "DATE"},
        foreignTypeDefinition="x",
        dataPolicies=[],
        fields=[],
    )
    spec = parse_spec(raw)
    assert spec.bigquery_schema()[4] == {
        "name": "distance_km",
        "type": "FLOAT64",
        "mode": "NULLABLE",
        "description": "",
    }


def test_an_unknown_key_far_from_any_known_one_lists_the_allowed_keys() -> None:
    (line,) = problems_of(workouts(owner="me"))
    assert line == (
        "workouts.json: owner: unknown key; allowed: table, description, source, id_column, "
        "partition_column, change_field, clustering, field_map, fields"
    )


# --------------------------------------------------------------------------------------
# Readable errors where the old code printed Python internals
# --------------------------------------------------------------------------------------


def test_an_unsupported_type_lists_the_allowed_types() -> None:
    raw = workouts()
    raw["fields"][4] = {"name": "amount", "type": "NUMERIC"}
    (line,) = problems_of(raw)
    assert line == (
        "workouts.json: fields[4].type: unsupported type 'NUMERIC' (declare FLOAT64, or STRING "
        "for exact digits); allowed: STRING, INT64 (or INTEGER), FLOAT64 (or FLOAT), "
        "BOOL (or BOOLEAN), TIMESTAMP, DATE, TIME, JSON, GEOGRAPHY, BYTES, RECORD (or STRUCT)"
    )
    for alias in TYPE_ALIASES:
        assert alias in line


def test_a_misspelt_type_gets_did_you_mean() -> None:
    raw = workouts()
    raw["fields"][4]["type"] = "FLAOT64"
    (line,) = problems_of(raw)
    assert "unsupported type 'FLAOT64' (did you mean 'FLOAT64'?); allowed: STRING" in line


def test_a_field_without_a_type_says_so_not_unsupported_type_none() -> None:
    raw = workouts()
    del raw["fields"][4]["type"]
    (line,) = problems_of(raw)
    assert line.startswith("workouts.json: fields[4]: missing key 'type': the column type, one of ")
    assert "None" not in line


@pytest.mark.parametrize(
    ("fields", "kind"),
    [({"user_id": "STRING"}, "an object"), ("user_id", "a string"), (None, "null")],
)
def test_fields_that_are_not_a_list_give_a_readable_error(fields: Any, kind: str) -> None:
    (line,) = problems_of(workouts(fields=fields))
    assert line == (
        'workouts.json: fields: must be a list of columns [{"name": …, "type": …}, …], '
        f"got {kind}"
    )


def test_a_field_that_is_not_an_object_gives_a_readable_error() -> None:
    raw = workouts()
    raw["fields"][4] = "distance_km"
    (line,) = problems_of(raw)
    assert line == (
        'workouts.json: fields[4]: expected a column object {"name": …, "type": …}, got a string'
    )


@pytest.mark.parametrize(
    ("raw", "start"),
    [
        ([{"name": "x", "type": "STRING"}], "workouts.json: the file holds a list, not a schema"),
        ("workouts", "workouts.json: the file holds a string, not a schema"),
        (workouts(source=["workouts"]), "workouts.json: source: expected an object"),
        (workouts(clustering="user_id"), "workouts.json: clustering: must be a list of column"),
        (workouts(field_map=[["a"]]), "workouts.json: field_map: must be an object"),
    ],
)
def test_wrong_json_shapes_give_readable_errors(raw: Any, start: str) -> None:
    lines = problems_of(raw)
    assert lines[0].startswith(start), lines
    assert not any("malformed" in line or "indices" in line for line in lines)


def test_a_bare_bigquery_schema_file_says_where_its_fields_go(tmp_path: Path) -> None:
    write(tmp_path, "plain.json", [{"name": "x", "type": "STRING"}])
    _, problems = check_specs(tmp_path)
    assert [str(p) for p in problems] == [
        'plain.json: the file holds a list, not a schema object {"table": …, "fields": […], …} '
        '(a bare BigQuery schema, a list of fields, goes under "fields")'
    ]


def test_files_that_are_not_json_or_not_utf8(tmp_path: Path) -> None:
    write(tmp_path, "a.json", "{")
    (tmp_path / "b.json").write_bytes(b'{"table": "\xff"}')
    _, problems = check_specs(tmp_path)
    assert [str(p).split(" (")[0] for p in problems] == [
        "a.json: not valid JSON",
        "b.json: not UTF-8 text",
    ]


# --------------------------------------------------------------------------------------
# The implicitly required owner column, and column roles
# --------------------------------------------------------------------------------------


def test_a_missing_owner_column_is_named_with_the_layout_that_needs_it() -> None:
    raw = workouts(clustering=[], source={"collection": "workouts", "parent_collection": "teams"})
    raw["fields"] = raw["fields"][1:]
    (line,) = problems_of(raw)
    assert line == (
        "workouts.json: fields: column 'user_id' is referenced but not declared: layout per_user "
        "(the default) fills it with the owner's id, the {user_id} of teams/{user_id}/workouts; "
        'add {"name": "user_id", "type": "STRING", "mode": "REQUIRED"}'
    )


def test_the_top_level_layout_needs_no_owner_column() -> None:
    raw = workouts(clustering=[], source={"collection": "workouts", "layout": "top_level"})
    raw["fields"] = raw["fields"][1:]
    spec = parse_spec(raw)
    assert spec.layout == "top_level" and "user_id" not in spec.column_names


def test_a_referenced_column_that_is_misspelt_gets_did_you_mean() -> None:
    (line,) = problems_of(workouts(partition_column="started"))
    assert line == (
        "workouts.json: partition_column: column 'started' is referenced but not declared in "
        "fields (did you mean 'started_at'?); partition_column names the partition column"
    )


@pytest.mark.parametrize(
    ("change", "start"),
    [
        ({"id_column": "distance_km"}, "workouts.json: id_column: column 'distance_km' receives"),
        ({"clustering": ["distance_km"]}, "workouts.json: clustering[0]: BigQuery cannot cluster"),
        ({"clustering": ["a", "b", "c", "d", "e"]}, "workouts.json: clustering: BigQuery clusters"),
        ({"description": 3}, "workouts.json: description: expected a string, got a number"),
    ],
)
def test_column_roles_are_checked(change: dict[str, Any], start: str) -> None:
    lines = problems_of(workouts(**change))
    assert lines[0].startswith(start), lines


def test_allowed_values_must_be_a_list() -> None:
    raw = workouts()
    raw["fields"][4] = {"name": "sport", "type": "STRING", "allowed_values": "run"}
    (line,) = problems_of(raw)
    assert line.startswith("workouts.json: fields[4].allowed_values: expected a list of strings")


# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


def test_the_shipped_schemas_pass_with_one_line_per_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_check(capsys, "--schemas_dir", str(REPO_ROOT / "schemas"))
    assert (code, err) == (0, "")
    shipped = load_specs(REPO_ROOT / "schemas")
    assert [line.split(":")[0] for line in out.splitlines()] == list(shipped)
    # The example app's tasks table, as the line reads.
    code, out, err = run_check(capsys, "--schemas_dir", str(example_app.SCHEMAS))
    lines = out.splitlines()
    tasks = next(line for line in lines if line.startswith("tasks:"))
    assert tasks == (
        "tasks: 12 columns (+5 sync columns), from users/{user_id}/tasks, partitioned by "
        "DAY(created_at) (TIMESTAMP), clustered by user_id, change field updated_at"
    )
    assert run_check(capsys)[:2] == (0, out)  # $F2BQ_SCHEMAS_DIR by default: the example


def test_a_valid_folder_prints_each_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "workouts.json", workouts())
    top = workouts(table="logs", source={"collection": "logs", "layout": "top_level"},
                   clustering=[], change_field=None)  # fmt: skip
    write(tmp_path, "logs.json", top)
    code, out, _ = run_check(capsys, "--schemas_dir", str(tmp_path))
    assert code == 0
    assert out.splitlines() == [
        "logs: 5 columns (+5 sync columns), from logs, partitioned by DAY(started_at) "
        "(TIMESTAMP), not clustered, no change field",
        "workouts: 5 columns (+5 sync columns), from users/{user_id}/workouts, partitioned by "
        "DAY(started_at) (TIMESTAMP), clustered by user_id, change field updated_at",
    ]


def test_firestore_to_bq_schema_check_is_wired(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "workouts.json", workouts(clusterng=[]))
    assert firestore_to_bq.main(["schema", "check", "--schemas_dir", str(tmp_path)]) == 2
    out, err = capfd.readouterr()
    assert out == "" and err.startswith("workouts.json: clusterng: unknown key")
    write(tmp_path, "workouts.json", workouts())
    assert firestore_to_bq.main(["schema", "check", "--schemas_dir", str(tmp_path)]) == 0
    assert capfd.readouterr().out.startswith("workouts: 5 columns")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "error: firestore-to-bq schema needs a command: check, suggest, drift"),
        (["chek"], "error: unknown command firestore-to-bq schema chek: did you mean 'check'?"),
        (
            ["sugest"],
            "error: unknown command firestore-to-bq schema sugest: did you mean 'suggest'?",
        ),
        (
            ["suggest"],
            "error: the following arguments are required: --project, --path",
        ),
        (
            ["check", "--schema_dir", "x"],
            "error: unknown option --schema_dir: did you mean --schemas_dir?",
        ),
    ],
)
def test_usage_errors_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert schema_check.main(argv) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", message + "\n")


def test_a_folder_that_cannot_be_read_or_holds_no_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    assert run_check(capsys, "--schemas_dir", str(missing)) == (
        2, "", f"error: --schemas_dir: cannot read {missing}\n"
    )  # fmt: skip
    code, _, err = run_check(capsys, "--schemas_dir", str(tmp_path))
    assert code == 2 and err.startswith(f"no table schemas found in {tmp_path}")


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert schema_check.main(["--help"]) == 0
    assert "firestore-to-bq schema check [--schemas_dir DIR]" in capsys.readouterr().out
    assert schema_check.main(["check", "--help"]) == 0
    assert "--schemas_dir" in capsys.readouterr().out


# --------------------------------------------------------------------------------------
# docs/schemas.md
# --------------------------------------------------------------------------------------


def test_the_documented_example_passes_schema_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = DOC.read_text(encoding="utf-8")
    example = re.search(r"## A complete example.*?```json\n(.*?)```", text, re.S)
    assert example
    write(tmp_path, "workouts.json", example.group(1))
    code, out, err = run_check(capsys, "--schemas_dir", str(tmp_path))
    assert (code, err) == (0, "")
    assert f"```\n{out}```" in text  # the documented output is the real one


def test_the_reference_names_every_type_key_and_sync_column() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in TYPE_ALIASES:
        assert f"`{name}`" in text, name
    from pipelines.convert import table_spec

    for key in [*table_spec.TOP_LEVEL_KEYS, *table_spec.SOURCE_KEYS, *table_spec.FIELD_KEYS,
                *table_spec.IGNORED_BIGQUERY_FIELD_KEYS, *table_spec.POLICIES,
                *table_spec.LAYOUTS, *table_spec.MODES]:  # fmt: skip
        assert f"`{key}`" in text, key
    for column in SYNC_COLUMNS:
        row = f"| `{column['name']}` | {column['type']} | {column['mode']} |"
        assert row in text, row
