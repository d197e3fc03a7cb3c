"""The model of what a run's statements scan (``pipelines.bigquery.commit_scans`` and
``drift_scans``) against the SQL those statements are: for each statement, the
partitions the model bills are exactly the ones the generated SQL names in its
constant partition filters (or every partition when a branch has none), and it bills
``_document_path`` exactly when the SQL references it. No server: the queries are
recorded by a stand-in client."""

from __future__ import annotations

import datetime
import itertools
import re
from typing import Any

import pytest

from pipelines.services import bigquery as bq

D1, D2, D3, D4 = (datetime.date(2026, 11, d) for d in (21, 22, 23, 24))
PART = "DATE(`created_at`)"
DAY_LIST = re.compile(re.escape(PART) + r" IN \(([^)]*)\)")


class Recorder:
    """A BigQuery client that records every query and returns no rows (a count of 0)."""

    project = "my-project"

    def __init__(self) -> None:
        self.sql: list[str] = []

    def query(self, sql: str, **_: Any) -> Any:
        self.sql.append(sql)
        rows = [] if "GROUP BY" in sql or "AS path" in sql else [{"n": 0}]
        return type("Job", (), {"result": lambda self, **_: rows})()


def _days(literals: str) -> set[datetime.date]:
    return {datetime.date.fromisoformat(d) for d in re.findall(r"DATE '([\d-]+)'", literals)}


def _closing(text: str, at: int) -> int:
    """The index of the parenthesis that closes the one at ``at``."""
    depth = 0
    for i in range(at, len(text)):
        depth += (text[i] == "(") - (text[i] == ")")
        if depth == 0:
            return i
    raise ValueError(f"unbalanced: {text!r}")


def _split(text: str, sep: str) -> list[str]:
    """``text`` split on ``sep`` outside parentheses, its outer parentheses dropped."""
    text = text.strip()
    while text.startswith("(") and _closing(text, 0) == len(text) - 1:
        text = text[1:-1]
    out, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += (c == "(") - (c == ")")
        if depth == 0 and text.startswith(sep, i):
            out.append(text[start:i])
            start = i + len(sep)
    return [*out, text[start:]]


def scanned(sql: str) -> tuple[frozenset[datetime.date] | None, bool] | None:
    """What one statement scans of its target, read from its SQL: the partitions its
    constant filters prune to (None: a branch of its condition has no day list, so it
    scans every partition) and whether it references ``_document_path``; None when it
    scans nothing. Subqueries read staging tables, not the target: they are left out."""
    while (at := sql.find("(SELECT ")) >= 0:
        sql = sql[:at] + sql[_closing(sql, at) + 1 :]
    path = "`_document_path`" in sql
    where = sql.split(" WHERE ", 1)[1].split(" GROUP BY ")[0]
    if where == "FALSE":
        return None
    days: set[datetime.date] = set()
    for branch in _split(where, " OR "):
        lists = [m[1] for c in _split(branch, " AND ") if (m := DAY_LIST.fullmatch(c.strip()))]
        if not lists:
            return None, path
        days |= set.intersection(*map(_days, lists))
    return (frozenset(days), path) if days else None


def _modelled(scans: list[bq.Scan]) -> list[tuple[frozenset | None, bool]]:
    return [(s.days, s.path) for s in scans if s.days != frozenset()]


def _commit_sql(days: list, located: list | None, incremental: bool) -> list[str]:
    """The statements ``write_bigquery``'s ``_replace_days`` sends for one table, in order."""
    client = Recorder()
    bq.rows_per_day(client, "analytics", "tasks", "created_at", days)
    sql = bq.replace_days_sql(
        "my-project", "analytics", "tasks", "_staging_r1_tasks", ["created_at"], "created_at",
        days, ["_document_path"],
        upsert_through=D4 if incremental else None,
        dead_staging="_staging_r1__dead_letters" if incremental else None,
        located=located,
    )  # fmt: skip
    client.sql.append(sql.split(";\n")[1])  # the DELETE; the INSERT reads only staging
    bq.rows_per_day(client, "analytics", "tasks", "created_at", days)
    if incremental:
        bq.count_rows_elsewhere(client, "analytics", "tasks", "_staging_r1_tasks", "created_at",
                                days, located=located, upsert_through=D4)  # fmt: skip
    return client.sql


REPLACED = ([], [D2], [D1, D2])
LOCATED = (None, [], [D1], [D2, D3], [D3, D4])


@pytest.mark.parametrize(
    ("days", "located"), list(itertools.product(REPLACED, LOCATED)), ids=lambda v: repr(v)
)
def test_an_incremental_commit_scans_what_its_sql_names(days: list, located: list | None) -> None:
    got = [s for s in map(scanned, _commit_sql(days, located, True)) if s is not None]
    assert got == _modelled(bq.commit_scans(days, located, incremental=True))


@pytest.mark.parametrize("days", REPLACED[1:], ids=repr)
def test_a_dated_full_commit_scans_what_its_sql_names(days: list) -> None:
    got = [s for s in map(scanned, _commit_sql(days, None, False)) if s is not None]
    assert got == _modelled(bq.commit_scans(days, None, incremental=False))


def test_a_rebuild_deletes_old_rows_over_the_whole_table() -> None:
    """Through a last day (a full rebuild), the delete by path has no partition filter.
    (The model counts a rebuild's replaced days, every day up to it that holds rows.)"""
    sql = bq.replace_days_sql(
        "my-project", "analytics", "tasks", "_staging_r1_tasks", ["created_at"], "created_at",
        [], ["_document_path"], through=D4,
    )  # fmt: skip
    assert scanned(sql.split(";\n")[1]) == (None, True)
    assert bq.commit_scans([D4], None, incremental=False)[1] == bq.Scan(
        "replace_days_sql", None, path=True
    )


@pytest.mark.parametrize("lookup", [[], [D2], [D1, D3]], ids=repr)
def test_the_drift_check_scans_what_its_sql_names(lookup: list) -> None:
    client = Recorder()
    verified = [D1, D2, D3]
    bq.rows_per_day(client, "analytics", "tasks", "created_at", verified)
    bq.days_of_paths(client, "analytics", "tasks", "created_at", lookup, ["users/u/tasks/t"])
    got = [s for s in map(scanned, client.sql) if s is not None]
    assert got == _modelled(bq.drift_scans(verified, lookup))


def test_bytes_follow_the_scans() -> None:
    sizes = {D1: (8, 20), D2: (16, 40), D3: (8, 20)}  # (partition column, _document_path)
    scans = [bq.Scan("a", frozenset({D1, D4}), path=False), bq.Scan("b", None, path=True)]
    assert bq.scanned_bytes(scans, sizes) == 8 + (8 + 20 + 16 + 40 + 8 + 20)
