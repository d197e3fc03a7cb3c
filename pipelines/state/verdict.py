"""One table's verdict in a run: the entries of ``_sync_runs.tables``, typed, in one place.

Two builders write these entries (``RecordRun``'s verdict and, for a run that
ended before it, :func:`pipelines.state.run_log.committed_entries`) and many
readers rely on them (the fold that plans every run, ``status``, backfill
progress, the console summary, the benchmark). Each used to index plain dicts
and compare status strings, and each carried its own guess at what an older
row meant. Here the statuses are enums, an entry is a frozen dataclass, and
:meth:`TableVerdict.from_json` is the only reader of the stored JSON: every
shape ever written is decoded on read, so no stored row is rewritten.

The shapes written so far, told apart by their keys (none carries a version):

* the first verdicts (2026-11-25): ``table``, ``replaced``, ``rows_per_day``,
  ``error`` and counts, with no ``status``, ``mode`` or ``replaced_days``. The
  status is the run's (``succeeded`` when the run succeeded and the table was
  replaced, else ``failed``); the replaced days are the days it counted
  (``rows_per_day``) when it replaced the table;
* per-table statuses (incremental mode): ``mode``, ``status``,
  ``replaced_days``, ``advances_watermark`` and more counts. Later keys, each
  absent before it was added: ``intraday`` (false), ``previous_reads`` (0),
  ``delete_days`` (null: the delete scanned the table, as it then did),
  ``fresh`` (see :attr:`TableVerdict.makes_fresh` and :attr:`TableVerdict.dated`),
  ``verified_days`` (none) with ``lookup_days`` (the verified days: the drift
  check looked rows up there), ``dead_letter_reasons`` (none);
* a run that ended before its verdict (``committed`` or ``failed`` per table
  from ``_sync_commits``): no counts and no ``fresh``.

A missing count reads as 0 and a missing list as empty, as the readers always
took them. :meth:`TableVerdict.to_json` writes today's two shapes key for key,
in their order, so the rows written are what they were before this module.

No version key is written: every shape so far is known by its keys, the
column's description (and so ``docs/tables.md``) lists exactly the keys a
verdict writes, and a version in each entry would change every row from now
on for no reader's benefit. ``"v"`` is reserved: an entry that carries a
version above :data:`VERSION` is refused rather than misread, so the first
change that alters what an existing key means writes ``"v": 2`` and teaches
:meth:`TableVerdict.from_json` the difference.
"""

from __future__ import annotations

import datetime
import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

#: The shape :meth:`TableVerdict.to_json` writes (unmarked: see the module docstring).
VERSION = 1


class TableStatus(enum.StrEnum):
    """How one table's part of a run ended, as stored in its entry's ``status``."""

    SUCCEEDED = "succeeded"
    NOT_RECONCILED = "not_reconciled"
    REFUSED = "refused"
    FAILED = "failed"
    #: Replaced by a run interrupted before its counts were checked (``_sync_commits``).
    COMMITTED = "committed"

    @property
    def replaced_ok(self) -> bool:
        """The run replaced the table as planned: the table's state moves with it."""
        return self in (TableStatus.SUCCEEDED, TableStatus.COMMITTED)


class RunStatus(enum.StrEnum):
    """How a run ended, as stored in its ``_sync_runs`` row's ``status``."""

    #: Written when the run starts; a run that never wrote another row never finished.
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NOT_RECONCILED = "not_reconciled"
    INTERRUPTED = "interrupted"


class UnknownVerdict(ValueError):
    """A ``_sync_runs`` value this code does not know: a newer sync wrote it, or it was
    edited by hand. Refused, since guessing would plan the next run from a misread."""


_Status = TypeVar("_Status", "TableStatus", "RunStatus")


def _decode(kind: type[_Status], value: Any, where: str) -> _Status:
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(member.value for member in kind)
        raise UnknownVerdict(
            f"{where}: unknown status {value!r} (known: {known}); written by a newer "
            "version of the sync? Upgrade it to read this dataset."
        ) from None


def run_status(row: Mapping[str, Any]) -> RunStatus:
    """The ``status`` of a ``_sync_runs`` row (a start row or a verdict)."""
    return _decode(RunStatus, row.get("status"), f"_sync_runs row of run {row.get('run_id')!r}")


def is_verdict(row: Mapping[str, Any]) -> bool:
    """Whether a ``_sync_runs`` row says how its run ended (not the ``running`` row)."""
    return run_status(row) is not RunStatus.RUNNING


@dataclass(frozen=True)
class Counts:
    """What a run read, wrote and checked for one table: only a verdict the run
    reached itself has them (a run that stopped first never counted)."""

    documents_read: int = 0
    #: Documents Firestore returned (cost); ``documents_read`` counts each once.
    documents_returned: int = 0
    count_queries: int = 0
    #: Previous versions read to find moved rows.
    previous_reads: int = 0
    #: The days the delete of old rows named; None: it scanned the table.
    delete_days: tuple[datetime.date, ...] | None = None
    #: Counted by the drift check.
    verified_days: tuple[datetime.date, ...] = ()
    #: Where the drift check looked up the changed documents' rows.
    lookup_days: tuple[datetime.date, ...] = ()
    rows_written: int = 0
    late_edits: int = 0
    dead_lettered: int = 0
    #: The commonest ``(field, reason kind, count)`` of the dead letters, never a value.
    dead_letter_reasons: tuple[tuple[str, str, int], ...] = ()
    outside_window: int = 0
    days_replaced: int = 0
    late_edit_days: tuple[datetime.date, ...] = ()
    drift_days: tuple[datetime.date, ...] = ()
    rows_per_day: dict[datetime.date, int] = field(default_factory=dict)
    rows_before: dict[datetime.date, int] = field(default_factory=dict)


#: Keys of the counts in a stored entry, so an entry with none of them is one
#: written without counts (a run that ended before its verdict).
_COUNT_KEYS = frozenset(Counts.__dataclass_fields__)


@dataclass(frozen=True)
class TableVerdict:
    """One table's entry in its run's ``_sync_runs`` row."""

    table: str
    status: TableStatus
    #: ``incremental`` or ``full``; None: not recorded (the first verdicts, or a run
    #: that stopped before planning the table).
    mode: str | None = None
    replaced: bool = False
    #: The days replaced whole (an intraday run's are not complete).
    replaced_days: tuple[datetime.date, ...] = ()
    advances_watermark: bool = False
    #: An intraday run: its replaced days are not complete.
    intraday: bool = False
    #: ``status``'s "fresh as of": a success not given dates. None: not recorded
    #: (verdicts before the field, and every run that ended before its verdict).
    fresh: bool | None = None
    error: str | None = None
    #: None: the run ended before counting (its entry comes from ``_sync_commits``).
    counts: Counts | None = None

    @property
    def counted(self) -> Counts:
        """The counts, all zero for a run that ended before counting: what a report
        of figures shows (the fold tells the two apart by :attr:`counts`)."""
        return self.counts if self.counts is not None else Counts()

    @property
    def makes_fresh(self) -> bool:
        """Whether a success leaves the table fresh as of the run's snapshot.

        Verdicts before the ``fresh`` field (and a run's entries from its commits)
        say it by the rule of their time: the run advanced the watermark, was
        intraday or was incremental."""
        if self.fresh is not None:
            return self.fresh
        return self.advances_watermark or self.intraday or self.mode == "incremental"

    @property
    def dated(self) -> bool:
        """Whether the verdict says the run was given its dates (``fresh`` false, not
        intraday), for a table it replaced; verdicts without ``fresh`` never say so."""
        return self.fresh is False and not self.intraday

    def to_json(self) -> dict[str, Any]:
        """The stored entry: today's shape, key for key and in order (the verdict's
        keys, or a stopped run's fewer keys when there are no counts)."""
        head: dict[str, Any] = {
            "table": self.table,
            "mode": self.mode,
            "status": self.status.value,
            "replaced": self.replaced,
        }
        days = [d.isoformat() for d in self.replaced_days]
        if self.counts is None:
            return {
                **head,
                "advances_watermark": self.advances_watermark,
                "intraday": self.intraday,
                **({} if self.fresh is None else {"fresh": self.fresh}),
                "replaced_days": days,
                "error": self.error,
            }
        c = self.counts
        return {
            **head,
            "replaced_days": days,
            "documents_read": c.documents_read,
            "documents_returned": c.documents_returned,
            "count_queries": c.count_queries,
            "previous_reads": c.previous_reads,
            "delete_days": None if c.delete_days is None else _texts(c.delete_days),
            "verified_days": _texts(c.verified_days),
            "lookup_days": _texts(c.lookup_days),
            "rows_written": c.rows_written,
            "late_edits": c.late_edits,
            "dead_lettered": c.dead_lettered,
            "dead_letter_reasons": [
                {"field": name, "reason": kind, "count": n}
                for name, kind, n in c.dead_letter_reasons
            ],
            "outside_window": c.outside_window,
            "days_replaced": c.days_replaced,
            "late_edit_days": _texts(c.late_edit_days),
            "drift_days": _texts(c.drift_days),
            "rows_per_day": {d.isoformat(): n for d, n in c.rows_per_day.items()},
            "rows_before": {d.isoformat(): n for d, n in c.rows_before.items()},
            "error": self.error,
            "advances_watermark": self.advances_watermark,
            "intraday": self.intraday,
            **({} if self.fresh is None else {"fresh": self.fresh}),
        }

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], run_status: RunStatus | None = None
    ) -> TableVerdict:
        """Any stored entry, whatever its shape (see the module docstring).

        ``run_status``: its run's, which the first verdicts' entries (no ``status``
        of their own) take theirs from. Raises :class:`UnknownVerdict` for a
        status or version this code does not know."""
        table = str(data.get("table"))
        where = f"_sync_runs entry of table {table!r}"
        version = data.get("v", VERSION)
        if not isinstance(version, int) or version > VERSION:
            raise UnknownVerdict(
                f"{where}: shape version {version!r} is newer than this sync reads "
                f"({VERSION}); upgrade it to read this dataset."
            )
        replaced = bool(data.get("replaced"))
        if "status" in data:
            status = _decode(TableStatus, data["status"], where)
        elif run_status is RunStatus.SUCCEEDED and replaced:  # the first verdicts
            status = TableStatus.SUCCEEDED
        else:
            status = TableStatus.FAILED
        days = data.get("replaced_days")
        if days is None:  # the first verdicts: the days it counted, if it replaced the table
            days = list(data.get("rows_per_day") or {}) if replaced else []
        fresh = data.get("fresh")
        return cls(
            table=table,
            status=status,
            mode=data.get("mode"),
            replaced=replaced,
            replaced_days=_dates(days),
            advances_watermark=bool(data.get("advances_watermark")),
            intraday=bool(data.get("intraday")),
            fresh=None if fresh is None else bool(fresh),
            error=data.get("error"),
            counts=_counts(data) if _COUNT_KEYS & set(data) else None,
        )


def _counts(data: Mapping[str, Any]) -> Counts:
    def number(key: str) -> int:
        value = data.get(key)
        return 0 if value is None else int(value)

    verified = _dates(data.get("verified_days") or ())
    lookup = data.get("lookup_days")
    delete = data.get("delete_days")
    return Counts(
        documents_read=number("documents_read"),
        documents_returned=number("documents_returned"),
        count_queries=number("count_queries"),
        previous_reads=number("previous_reads"),
        delete_days=None if delete is None else _dates(delete),
        verified_days=verified,
        lookup_days=verified if lookup is None else _dates(lookup),
        rows_written=number("rows_written"),
        late_edits=number("late_edits"),
        dead_lettered=number("dead_lettered"),
        dead_letter_reasons=tuple(
            (str(r.get("field")), str(r.get("reason")), int(r.get("count") or 0))
            for r in data.get("dead_letter_reasons") or ()
            if isinstance(r, dict)
        ),
        outside_window=number("outside_window"),
        days_replaced=number("days_replaced"),
        late_edit_days=_dates(data.get("late_edit_days") or ()),
        drift_days=_dates(data.get("drift_days") or ()),
        rows_per_day=_per_day(data.get("rows_per_day")),
        rows_before=_per_day(data.get("rows_before")),
    )


def entries(row: Mapping[str, Any]) -> list[TableVerdict]:
    """A ``_sync_runs`` row's entries. Its ``tables`` cell comes parsed or as text
    (clients differ), or null; anything in it that is not an object is skipped."""
    cell = row.get("tables")
    if isinstance(cell, str):
        cell = json.loads(cell or "[]")
    stored = [t for t in cell or () if isinstance(t, dict)]
    # Only the first verdicts' entries need their run's status (they have none).
    status = run_status(row) if any("status" not in t for t in stored) else None
    return [TableVerdict.from_json(t, status) for t in stored]


def worst(tables: Sequence[TableVerdict], dead_letters_ok: bool) -> RunStatus:
    """A run's status from its tables': failed when one failed or was refused (or the
    dead letters were not written), else not_reconciled when one did not reconcile."""
    statuses = {t.status for t in tables}
    if not dead_letters_ok or statuses & {TableStatus.FAILED, TableStatus.REFUSED}:
        return RunStatus.FAILED
    if TableStatus.NOT_RECONCILED in statuses:
        return RunStatus.NOT_RECONCILED
    return RunStatus.SUCCEEDED


def _texts(days: Iterable[datetime.date]) -> list[str]:
    return [d.isoformat() for d in days]


def _day(value: Any) -> datetime.date:
    """A stored day: ``YYYY-MM-DD`` (a longer ISO text is cut to its date)."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value)[:10])


def _dates(values: Iterable[Any]) -> tuple[datetime.date, ...]:
    return tuple(_day(v) for v in values)


def _per_day(value: Any) -> dict[datetime.date, int]:
    return {_day(d): int(n) for d, n in (value or {}).items()}
