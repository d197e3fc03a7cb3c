"""``setup_bigquery.py`` with RECORD, GEOGRAPHY and BYTES columns (issue 25, Types):
a new column of any of them is added by DDL; an existing RECORD's sub-fields are
left alone, and a change to them is refused. No server."""

from __future__ import annotations

import pytest
from google.cloud import bigquery

from devtools import setup_bigquery as setup

STATS = {
    "name": "stats", "type": "RECORD", "mode": "NULLABLE", "description": "",
    "fields": [
        {"name": "hr", "type": "INT64", "mode": "REQUIRED", "description": ""},
        {"name": "laps", "type": "RECORD", "mode": "REPEATED", "description": "",
         "fields": [{"name": "at", "type": "TIMESTAMP", "mode": "NULLABLE"}]},
    ],
}  # fmt: skip


def test_new_columns_of_the_new_types_are_added_by_ddl() -> None:
    column = bigquery.SchemaField.from_api_repr(STATS)
    assert setup.add_column_sql("p", "d", "w", column) == (
        "ALTER TABLE `p.d.w` ADD COLUMN IF NOT EXISTS `stats` "
        "STRUCT<`hr` INT64 NOT NULL, `laps` ARRAY<STRUCT<`at` TIMESTAMP>>>"
    )
    for kind, mode, sql in [("GEOGRAPHY", "REPEATED", "ARRAY<GEOGRAPHY>"),
                            ("BYTES", "NULLABLE", "BYTES")]:  # fmt: skip
        field = bigquery.SchemaField("x", kind, mode=mode)
        assert setup.add_column_sql("p", "d", "w", field).endswith(f"`x` {sql}")


def test_an_unchanged_record_is_kept_and_its_sub_field_descriptions_follow_the_file() -> None:
    existing = [bigquery.SchemaField.from_api_repr(STATS)]
    described = {**STATS, "fields": [{**STATS["fields"][0], "description": "beats"},
                                     STATS["fields"][1]]}  # fmt: skip
    schema, changes = setup.plan_schema("d.w", existing, [STATS])
    assert changes == [] and schema[0].fields[0].name == "hr"
    schema, _ = setup.plan_schema("d.w", existing, [described])
    assert schema[0].fields[0].description == "beats"


@pytest.mark.parametrize(
    "fields",
    [
        [STATS["fields"][0]],  # a sub-field removed
        [*STATS["fields"], {"name": "new", "type": "STRING", "mode": "NULLABLE"}],  # added
        [{**STATS["fields"][0], "type": "FLOAT64"}, STATS["fields"][1]],  # retyped
        [STATS["fields"][0], {**STATS["fields"][1], "fields": [{"name": "at", "type": "DATE"}]}],
    ],
)
def test_a_change_to_an_existing_records_sub_fields_is_refused(fields) -> None:
    existing = [bigquery.SchemaField.from_api_repr(STATS)]
    with pytest.raises(setup.Refused, match=r"table d\.w: RECORD column stats(\.laps)? would "
                       "change its sub-fields"):  # fmt: skip
        setup.plan_schema("d.w", existing, [{**STATS, "fields": fields}])
