"""Where bqemulator differs from BigQuery, pinned down so docs/emulators.md stays true.

Each test shows the emulator's behaviour that the product's single code path is
built around. If a new bqemulator fixes one, its test fails: revisit the
"Emulator shortfalls" table of docs/emulators.md (the product code needs no change either way).
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from google.api_core import exceptions
from google.cloud import bigquery

from pipelines.services import bigquery as bq
from tests.support.sync_helpers import unique_dataset

SCHEMA = [
    {"name": "at", "type": "TIMESTAMP", "mode": "REQUIRED"},
    {"name": "n", "type": "INT64", "mode": "NULLABLE"},
    {"name": "b", "type": "BYTES", "mode": "NULLABLE"},
]


@pytest.fixture
def table(bq_client: bigquery.Client) -> tuple[str, str]:
    dataset = unique_dataset("shortfall")
    bq.ensure_dataset(bq_client, dataset, None)
    bq.ensure_table(bq_client, dataset, "t", SCHEMA, "at")
    return dataset, "t"


def _rows(n: int) -> list[dict]:
    return [{"at": "2026-11-24T10:00:00Z", "n": i} for i in range(n)]


def test_emulator_rejects_partition_decorators_in_loads(bq_client, table):
    dataset, name = table
    with pytest.raises((exceptions.GoogleAPICallError, bq.LoadFailed, ValueError)):
        bq.load_rows(bq_client, dataset, f"{name}$20261124", SCHEMA, _rows(1))


def test_emulator_rejects_query_parameters_inside_a_script(bq_client, table):
    dataset, name = table
    script = (
        f"BEGIN TRANSACTION; DELETE FROM `{bq_client.project}.{dataset}.{name}` "
        "WHERE n = @n; COMMIT TRANSACTION;"
    )
    with pytest.raises(exceptions.GoogleAPICallError):
        bq.run_query(
            bq_client, script, query_parameters=[bigquery.ScalarQueryParameter("n", "INT64", 1)]
        )


def test_emulator_load_output_rows_is_the_table_total_not_the_job(bq_client, table):
    dataset, name = table
    bq.load_rows(bq_client, dataset, name, SCHEMA, _rows(3))
    payload = "".join(json.dumps(r) + "\n" for r in _rows(2)).encode()
    job = bq_client.load_table_from_file(
        io.BytesIO(payload),
        f"{bq_client.project}.{dataset}.{name}",
        job_config=bigquery.LoadJobConfig(
            schema=bq.schema_fields(SCHEMA), source_format="NEWLINE_DELIMITED_JSON"
        ),
        timeout=60,
    )
    job.result(timeout=60)
    assert job.output_rows == 5  # BigQuery would say 2


def test_emulator_keeps_bytes_as_their_base64_text(bq_client, table):
    dataset, name = table
    bq.load_rows(bq_client, dataset, name, SCHEMA, [{"at": "2026-11-24T10:00:00Z", "b": "aGk="}])
    (row,) = bq.run_query(
        bq_client, f"SELECT b FROM `{bq_client.project}.{dataset}.{name}`"
    ).result()
    assert row["b"] == b"aGk="  # BigQuery decodes base64 in JSON loads: b"hi"


def test_emulator_returns_geography_as_wkb_not_wkt(bq_client):
    """BigQuery returns a GEOGRAPHY column as WKT text; bqemulator hands the client
    the binary WKB as if BYTES, which the client then base64-decodes: it fails
    (``binascii.Error``) or gives bytes, never the text, and a REPEATED one alike.
    It loads WKT and answers ST_ASTEXT, which is what the tests read."""
    dataset = unique_dataset("shortfall")
    schema = [*SCHEMA, {"name": "g", "type": "GEOGRAPHY", "mode": "NULLABLE"},
              {"name": "gs", "type": "GEOGRAPHY", "mode": "REPEATED"}]  # fmt: skip
    bq.ensure_dataset(bq_client, dataset, None)
    bq.ensure_table(bq_client, dataset, "t", schema, "at")
    row = {"at": "2026-11-24T10:00:00Z", "g": "POINT(2.5 48.5)", "gs": ["POINT(1 2)"]}
    bq.load_rows(bq_client, dataset, "t", schema, [row])
    target = f"`{bq_client.project}.{dataset}.t`"
    for column, wkt in (("g", "POINT(2.5 48.5)"), ("gs", ["POINT(1 2)"])):
        try:
            (got,) = bq.run_query(bq_client, f"SELECT {column} FROM {target}").result()
            value = got[column]
        except ValueError:  # binascii.Error: the WKB is not base64
            value = None
        assert value != wkt  # BigQuery: the WKT text
    (got,) = bq.run_query(bq_client, f"SELECT ST_ASTEXT(g) AS wkt FROM {target}").result()
    assert got["wkt"] == "POINT (2.5 48.5)"  # BigQuery: "POINT(2.5 48.5)"


def test_emulator_cannot_create_a_record_with_a_reserved_keyword_sub_field(bq_client):
    """BigQuery creates a RECORD whose sub-field is named ``inner`` (any reserved
    keyword); bqemulator answers 500 (a top-level column of that name is fine).
    ``schema suggest`` never proposes a reserved keyword as a name."""
    dataset = unique_dataset("shortfall")
    bq.ensure_dataset(bq_client, dataset, None)
    inner = {"name": "inner", "type": "STRING"}
    schema = [{"name": "at", "type": "TIMESTAMP", "mode": "REQUIRED"},
              {"name": "r", "type": "RECORD", "fields": [inner]}]  # fmt: skip
    table = bigquery.Table(f"{bq_client.project}.{dataset}.t", schema=bq.schema_fields(schema))
    with pytest.raises(exceptions.InternalServerError):
        bq_client.create_table(table, retry=None, timeout=30)
    bq_client.list_datasets(timeout=30)  # the next call (with retries) finds it serving again


def test_emulator_dry_run_reports_zero_bytes(bq_client, table):
    dataset, name = table
    bq.load_rows(bq_client, dataset, name, SCHEMA, _rows(100))
    job = bq_client.query(
        f"SELECT n FROM `{bq_client.project}.{dataset}.{name}`",
        job_config=bigquery.QueryJobConfig(dry_run=True, use_query_cache=False),
        timeout=60,
    )
    assert job.total_bytes_processed == 0  # BigQuery: 800 (8 bytes x 100 rows)


def test_emulator_does_not_return_a_views_query(bq_client, table):
    dataset, name = table
    view = bigquery.Table(f"{bq_client.project}.{dataset}.v")
    view.view_query = f"SELECT n FROM `{bq_client.project}.{dataset}.{name}`"
    bq_client.create_table(view, timeout=60)
    found = bq_client.get_table(view.reference, timeout=60)
    assert found.table_type == "VIEW"
    assert found.view_query is None  # BigQuery returns the SQL


def test_emulator_counts_parameter_names_in_comments(bq_client, table):
    dataset, name = table
    sql = f"-- rows up to @n\nSELECT n FROM `{bq_client.project}.{dataset}.{name}` WHERE n <= @n"
    with pytest.raises(exceptions.BadRequest, match="Parameter argument/count mismatch"):
        bq.run_query(
            bq_client, sql, query_parameters=[bigquery.ScalarQueryParameter("n", "INT64", 1)]
        )


def test_emulator_runs_both_of_two_transactions_that_mutate_one_table(bq_client, table):
    """BigQuery cancels one of them ("Transaction is aborted due to concurrent update",
    https://cloud.google.com/bigquery/docs/transactions#transaction_concurrency); the
    emulator serialises them, so tests inject that abort with tests/support/bigquery_fault_proxy.py
    and the table leases (pipelines/state/leases.py) are what keeps two runs apart."""
    dataset, name = table
    bq.load_rows(bq_client, dataset, name, SCHEMA, _rows(10))
    target = f"`{bq_client.project}.{dataset}.{name}`"
    script = (
        f"BEGIN TRANSACTION; DELETE FROM {target} WHERE n < 5; "
        f"INSERT INTO {target} (`at`, `n`) VALUES (TIMESTAMP '2026-11-24 10:00:00+00', 99); "
        "COMMIT TRANSACTION;"
    )
    with ThreadPoolExecutor(2) as pool:
        jobs = list(pool.map(lambda _: bq.run_query(bq_client, script), range(2)))
    assert [job.error_result for job in jobs] == [None, None]  # BigQuery: one aborted
    (row,) = bq.run_query(bq_client, f"SELECT COUNT(*) AS n FROM {target}").result()
    assert row["n"] == 5 + 2


def test_emulator_names_json_strings_and_numbers_by_duckdb_types(bq_client):
    """BigQuery's JSON_TYPE says ``string`` and ``number``; the emulator answers with
    DuckDB's types, so ``schema drift`` (pipelines/cli/schema_drift.py ``kind_sql``)
    accepts ``varchar`` as a string and takes every other number type for a number."""
    (row,) = bq.run_query(
        bq_client,
        "SELECT JSON_TYPE(JSON '\"a\"') AS s, JSON_TYPE(JSON '12') AS i, "
        "JSON_TYPE(JSON '1.5') AS d, JSON_TYPE(JSON '{\"k\": 1}') AS o, "
        "JSON_TYPE(JSON '[1]') AS a, JSON_TYPE(JSON 'true') AS b, JSON_TYPE(JSON 'null') AS n",
    ).result()
    assert row["s"] == "varchar"  # BigQuery: "string"
    assert row["i"] in ("bigint", "ubigint") and row["d"] == "double"  # BigQuery: "number"
    assert [row[k] for k in "oabn"] == ["object", "array", "boolean", "null"]  # as BigQuery


def test_emulator_converts_json_laxly_under_safe(bq_client):
    """BigQuery's INT64(json) and BOOL(json) refuse a decimal (SAFE. gives NULL); the
    emulator rounds it and calls it true, so ``schema drift`` tells integers from
    decimals by their text (REGEXP_CONTAINS on JSON_VALUE), which both read alike."""
    (row,) = bq.run_query(
        bq_client,
        "SELECT SAFE.INT64(JSON '1.5') AS i, SAFE.BOOL(JSON '1.5') AS b, "
        "JSON_VALUE(JSON '1.5') AS text",
    ).result()
    assert row["i"] == 2  # BigQuery: NULL
    assert row["b"] is True  # BigQuery: NULL
    assert row["text"] == "1.5"  # as BigQuery
