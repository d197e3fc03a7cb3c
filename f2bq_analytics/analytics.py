"""The app's analytics over the synced tables, so no team hand-writes this SQL.

    python -m f2bq_analytics user_analytics --project P --dataset D --user_id U \\
        [--days 30] [--limit 20] [--as_of 2026-11-25T00:00:00Z] [--dry_run]

The SQL lives in ``f2bq_analytics/sql/`` (package data), one file per query and per
dashboard view. Every value is a query parameter; only validated table names
are put into the text. Each query filters on its table's partition column, so
BigQuery reads only the window's partitions, and carries ``maximum_bytes_billed``
so a mistake fails instead of scanning a whole table. ``AsyncAnalytics`` runs
the same methods in a worker thread for async backends.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import inspect
import json
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery

from pipelines.services import bigquery as bq
from pipelines.services import error_text

UTC = datetime.UTC
#: Enough for a month of a busy user's partitions; a query that would bill more fails unbilled.
DEFAULT_MAXIMUM_BYTES_BILLED = 10 * 1024**3
#: An app request should fail within a minute, not retry an erroring server for ten.
TIMEOUT = 60.0
RETRY = bigquery.DEFAULT_RETRY.with_timeout(TIMEOUT)
MAX_DAYS = 3660
CHAT_LIMIT = 20
MAX_CHAT_LIMIT = 100
CHAT_INTENT = "chat"


@dataclass(frozen=True)
class Sql:
    """One ``.sql`` file over one table; ``{table}`` is its only placeholder."""

    name: str
    table: str
    folder: str = "sql"

    def text(self, project: str, dataset: str) -> str:
        template = resources.files("f2bq_analytics").joinpath(self.folder, f"{self.name}.sql")
        return template.read_text(encoding="utf-8").format(
            table=bq.table_sql(project, dataset, self.table)
        )


QUERIES = {
    q.name: q
    for q in (
        Sql("user_analytics", "user_interactions"),
        Sql("task_completion_rate", "tasks"),
        Sql("chat_history", "user_interactions"),
        Sql("emotional_trend", "emotional_memories"),
    )
}
#: Dashboard views created by scripts/setup_bigquery.py, with their descriptions.
VIEWS = {
    Sql("daily_user_activity", "user_interactions", "sql/views"): (
        "Per user and UTC day: interactions, tokens, errors, average duration (ms)."
    ),
    Sql("daily_task_completion", "tasks", "sql/views"): (
        "Per user and UTC day of creation: tasks, completed, completion rate."
    ),
    Sql("daily_emotional_valence", "emotional_memories", "sql/views"): (
        "Per user and UTC day: memories and their average emotional valence."
    ),
}


def _positive(value: int, name: str, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise ValueError(f"{name} must be a whole number from 1 to {most}, not {value!r}")
    return value


def check_user_id(user_id: str) -> str:
    if not isinstance(user_id, str) or not user_id:
        raise ValueError(f"user_id must be a non-empty string, not {user_id!r}")
    return user_id


def check_days(days: int) -> int:
    return _positive(days, "days", MAX_DAYS)


def check_as_of(value: datetime.datetime | None) -> datetime.datetime:
    if value is None:
        return datetime.datetime.now(UTC)
    if not isinstance(value, datetime.datetime) or value.tzinfo is None:
        raise ValueError(f"as_of must be a timezone-aware datetime, not {value!r}")
    return value.astimezone(UTC)


def _parameter(name: str, value: Any) -> bigquery.ScalarQueryParameter:
    kind = {str: "STRING", int: "INT64", datetime.datetime: "TIMESTAMP"}[type(value)]
    return bigquery.ScalarQueryParameter(name, kind, value)


class Analytics:
    """One user's figures; "the last N days" is ``[as_of - N days, as_of]``, both ends in."""

    def __init__(
        self,
        project: str,
        dataset: str,
        client: bigquery.Client | None = None,
        location: str | None = None,
        maximum_bytes_billed: int = DEFAULT_MAXIMUM_BYTES_BILLED,
    ) -> None:
        self.project = bq.check_project(project)
        self.dataset = bq.check_identifier(dataset, "dataset")
        self.maximum_bytes_billed = _positive(maximum_bytes_billed, "maximum_bytes_billed", 2**62)
        self.client = client or bq.make_client(project, location)

    def user_analytics(
        self, user_id: str, days: int = 30, as_of: datetime.datetime | None = None
    ) -> dict[str, Any]:
        (row,) = self._rows("user_analytics", user_id, days, as_of)
        return {
            "total_interactions": row["total_interactions"],
            "active_days": row["active_days"],
            "avg_duration_ms": row["avg_duration_ms"],
            "total_tokens": row["total_tokens"],
            "error_count": row["error_count"],
            "top_intents": [
                {"value": i["value"], "count": i["n"]} for i in row["top_intents"] or ()
            ],
        }

    def task_completion_rate(
        self, user_id: str, days: int = 7, as_of: datetime.datetime | None = None
    ) -> dict[str, Any]:
        (row,) = self._rows("task_completion_rate", user_id, days, as_of)
        return {"tasks": row["tasks"], "completed": row["completed"], "rate": row["rate"]}

    def chat_history(
        self,
        user_id: str,
        days: int = 7,
        limit: int = CHAT_LIMIT,
        as_of: datetime.datetime | None = None,
    ) -> list[dict[str, Any]]:
        """The user's latest ``chat`` turns in ``[as_of - days, as_of]``, newest first.

        As fresh as the last sync: with the hourly ``--intraday`` job, today's turns
        up to that run's snapshot (``firestore-to-bq status`` says "fresh as of");
        with only the nightly, up to the end of yesterday (UTC). Nothing reads
        Firestore here: a turn newer than the last snapshot is not returned yet.
        """
        return [dict(row) for row in self._rows("chat_history", user_id, days, as_of, limit)]

    def emotional_trend(
        self, user_id: str, days: int = 30, as_of: datetime.datetime | None = None
    ) -> dict[str, Any]:
        rows = self._rows("emotional_trend", user_id, days, as_of)
        return {
            "days": [
                {"day": r["day"], "memories": r["memories"], "avg_valence": r["avg_valence"]}
                for r in rows
            ],
            "avg_valence": rows[0]["overall_avg_valence"] if rows else None,
        }

    def bytes_processed(
        self,
        call: str,
        user_id: str,
        days: int,
        as_of: datetime.datetime | None = None,
        limit: int = CHAT_LIMIT,
    ) -> int:
        """What ``call`` would scan, from a BigQuery dry run (free, runs nothing)."""
        job = self._job(call, user_id, days, as_of, limit, dry_run=True)
        return int(job.total_bytes_processed or 0)

    def _rows(
        self,
        call: str,
        user_id: str,
        days: int,
        as_of: datetime.datetime | None,
        limit: int = CHAT_LIMIT,
    ) -> list[bigquery.Row]:
        job = self._job(call, user_id, days, as_of, limit)
        return list(job.result(timeout=TIMEOUT, retry=RETRY))

    def _job(
        self,
        call: str,
        user_id: str,
        days: int,
        as_of: datetime.datetime | None,
        limit: int,
        dry_run: bool = False,
    ) -> bigquery.QueryJob:
        """Start the call's query; every value is checked and passed as a parameter."""
        values = {
            "user_id": check_user_id(user_id),
            "days": check_days(days),
            "as_of": check_as_of(as_of),
        }
        if call == "chat_history":
            values.update(limit=_positive(limit, "limit", MAX_CHAT_LIMIT), intent=CHAT_INTENT)
        config = bigquery.QueryJobConfig(
            query_parameters=[_parameter(k, v) for k, v in values.items()],
            maximum_bytes_billed=self.maximum_bytes_billed,
            dry_run=dry_run,
            use_query_cache=not dry_run,
        )
        return self.client.query(
            QUERIES[call].text(self.project, self.dataset),
            job_config=config,
            timeout=TIMEOUT,
            retry=RETRY,
            job_retry=None,
        )


def _in_thread(method: Callable[..., Any]) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(method)
    async def call(self: AsyncAnalytics, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(method, self.sync, *args, **kwargs)

    return call


class AsyncAnalytics:
    """The same calls, awaitable: each runs :class:`Analytics` in a worker thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sync = Analytics(*args, **kwargs)

    user_analytics = _in_thread(Analytics.user_analytics)
    task_completion_rate = _in_thread(Analytics.task_completion_rate)
    chat_history = _in_thread(Analytics.chat_history)
    emotional_trend = _in_thread(Analytics.emotional_trend)


def _parse_as_of(value: str) -> datetime.datetime:
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--as_of {value!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise ValueError("--as_of needs a UTC offset, e.g. 2026-11-25T00:00:00Z")
    return parsed


def to_json(result: Any, indent: int | None = 2) -> str:
    """A call's result as JSON: times in RFC 3339 (UTC), days as YYYY-MM-DD."""
    return json.dumps(result, default=_json_default, indent=indent)


def _json_default(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, datetime.date):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


def main(argv: Sequence[str] | None = None) -> int:
    """Print one call's result as JSON: 0 done, 1 BigQuery failed, 2 bad arguments.

    The same contract as the sync: every failure is one ``error:`` line, and an
    unreachable BigQuery is found by the sync's probe within its deadline
    instead of by the query's retries.
    """
    # Imported here: they bring Beam in, which an app backend importing Analytics does not need.
    from pipelines.cli.usage import Parser
    from pipelines.services import reachability

    parser = Parser(prog="python -m f2bq_analytics", description=__doc__.split("\n")[0])
    parser.add_argument("call", choices=sorted(QUERIES))
    parser.add_argument("--project", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--user_id", required=True)
    parser.add_argument("--days", type=int, help="Window length (default: the call's).")
    parser.add_argument("--limit", type=int, help="chat_history only: most turns (1..100).")
    parser.add_argument("--as_of", help="End of the window, RFC 3339 (default: now).")
    parser.add_argument("--location", help="BigQuery location of the dataset.")
    parser.add_argument("--maximum_bytes_billed", type=int, default=DEFAULT_MAXIMUM_BYTES_BILLED)
    parser.add_argument(
        "--dry_run", action="store_true", help="Print the bytes the query would scan."
    )
    try:
        args = parser.parse_args(argv)
        check_user_id(args.user_id)
        default_days = inspect.signature(getattr(Analytics, args.call)).parameters["days"].default
        days = check_days(default_days if args.days is None else args.days)
        as_of = _parse_as_of(args.as_of) if args.as_of else None
        if args.limit is not None and args.call != "chat_history":
            raise ValueError("--limit applies to chat_history only")
        limit = _positive(
            CHAT_LIMIT if args.limit is None else args.limit, "--limit", MAX_CHAT_LIMIT
        )
        bq.check_project(args.project)
        bq.check_identifier(args.dataset, "dataset")
        _positive(args.maximum_bytes_billed, "--maximum_bytes_billed", 2**62)
    except SystemExit as done:  # --help
        return int(done.code or 0)
    except ValueError as exc:  # UsageError and UnsafeIdentifier are ValueErrors
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        reachability.check_bigquery(args.project, args.dataset, args.location)
        analytics = Analytics(
            args.project,
            args.dataset,
            location=args.location,
            maximum_bytes_billed=args.maximum_bytes_billed,
        )
        extra = {"limit": limit} if args.call == "chat_history" else {}
        if args.dry_run:
            result: Any = {
                "total_bytes_processed": analytics.bytes_processed(
                    args.call, args.user_id, days, as_of, limit
                )
            }
        else:
            result = getattr(analytics, args.call)(args.user_id, days, as_of=as_of, **extra)
    except reachability.Unreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (api_exceptions.GoogleAPIError, OSError) as exc:  # requests' errors are OSErrors
        print(f"error: {error_text.one_line(exc)}", file=sys.stderr)
        return 1
    print(to_json(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
