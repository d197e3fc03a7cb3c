"""The model the sequence state machine's pure tier runs: the planner under many
sequences, no server (``tests/unit/plan/test_sequence_model.py`` explores it with hypothesis,
``tests/unit/plan/test_sequence_regressions.py`` replays the sequences it found by name).

The same rules as ``tests/integration/test_sequence_machine.py`` (app writes, missed nights,
nightlies, dated runs in either mode, full runs, subsets, backfill chunks, runs
that fail before or part-way through their commits), with Firestore and BigQuery
replaced by a model of what they hold and the pipeline by a model of what its
transaction does with a plan. Everything that decides is the real code:
``windows.plan_windows`` (modes, windows, watermarks, catch-up), ``read_plan.
plan_incremental`` (range reads, drift), ``tally`` (late-edit days) and
``run_log.fold_states`` (what ``_sync_runs`` and ``_sync_commits`` say of each table).

Intraday runs (``windows.plan_intraday``) come in between, and a nightly the
same day after them: a run without dates answers for today too once an intraday
run has written it (``windows.wrote_today``).

Invariant: after every successful run, every table it synced equals a full
rebuild at its snapshot over the days it is responsible for (every day up to
yesterday for a run without dates, today too after intraday runs that day,
its window otherwise), except what the docs
say an incremental run cannot see: hard deletes older than ``--verify_days``, and
in a table without a change field a back-dated create that a delete on the same
day cancels out in the counts (interactions are created as they happen, so the
model creates them at "now").
"""

from __future__ import annotations

import dataclasses
import datetime

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pipelines.clock import day_bounds
from pipelines.convert.table_spec import load_specs
from pipelines.plan.read_plan import plan_incremental
from pipelines.plan.windows import (
    CatchUpTooLong,
    TableWindow,
    plan_intraday,
    plan_windows,
    wrote_today,
)
from pipelines.state import run_log
from pipelines.state.verdict import RunStatus, TableStatus, TableVerdict

UTC = datetime.UTC
ONE_DAY = datetime.timedelta(days=1)
SPECS = load_specs()
TABLES = ("tasks", "user_interactions")
VERIFY_DAYS = 35


@dataclasses.dataclass(frozen=True)
class Doc:
    table: str
    ts: datetime.datetime  # the partition value
    updated: datetime.datetime  # Firestore's update time, and ``updated_at``
    valid: bool = True
    created: datetime.datetime | None = None  # Firestore's create time

    @property
    def day(self) -> datetime.date:
        return self.ts.date()

    @property
    def row(self) -> tuple:
        return (self.ts, self.updated)


class Model(RuleBasedStateMachine):
    """Firestore (``docs``), BigQuery (``tables``, ``runs``, ``commits``) and a clock."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = datetime.datetime(2026, 3, 1, 9, tzinfo=UTC)
        self.docs: dict[str, Doc] = {}
        self.tables: dict[str, dict[str, tuple[datetime.date, tuple]]] = {t: {} for t in TABLES}
        self.runs: list[dict] = []
        self.commits: dict[str, dict[str, dict]] = {}
        self.letters: list[tuple[str, datetime.date, datetime.datetime]] = []  # _dead_letters
        self.serial = 0
        #: Every version of every document (None: deleted), for reads at a past snapshot.
        self.versions: dict[str, list[tuple[datetime.datetime, Doc | None]]] = {}

    def _set(self, path: str, doc: Doc | None, now: datetime.datetime) -> None:
        self.versions.setdefault(path, []).append((now, doc))
        if doc is None:
            del self.docs[path]
        else:
            self.docs[path] = doc

    def version_at(self, path: str, when: datetime.datetime) -> Doc | None:
        found = None
        for at, doc in self.versions.get(path, ()):
            if at <= when:
                found = doc
        return found

    # -- the app and the clock ---------------------------------------------------------

    def _tick(self) -> datetime.datetime:
        self.clock += datetime.timedelta(minutes=7)
        return self.clock

    def _write(self, kind: str, which: int, offset: int) -> None:
        now = self._tick()
        day = now.date() + datetime.timedelta(days=offset)
        ts = datetime.datetime.combine(day, datetime.time(which % 24), UTC)
        tasks = sorted(p for p, d in self.docs.items() if d.table == "tasks")
        if kind == "create_interaction":  # the app logs a turn as it happens
            ts = now
        if kind in ("create_task", "malformed_task", "create_interaction"):
            table = "user_interactions" if kind == "create_interaction" else "tasks"
            self.serial += 1
            doc = Doc(table, ts, now, kind != "malformed_task", created=now)
            self._set(f"{table}/d{self.serial}", doc, now)
        elif kind == "delete" and self.docs:
            self._set(sorted(self.docs)[which % len(self.docs)], None, now)
        elif tasks:
            path = tasks[which % len(tasks)]
            doc = self.docs[path]
            if kind == "edit_task":
                self._set(path, dataclasses.replace(doc, updated=now), now)
            elif kind == "fix_task":
                self._set(path, dataclasses.replace(doc, updated=now, valid=True), now)
            elif kind == "move_task":
                self._set(path, dataclasses.replace(doc, ts=ts, updated=now), now)

    @initialize(
        ops=st.lists(
            st.tuples(
                st.sampled_from(["create_task", "create_interaction", "malformed_task"]),
                st.integers(0, 30),
                st.integers(-6, 0),
            ),
            min_size=1,
            max_size=8,
        )
    )
    def history(self, ops) -> None:
        for op in ops:
            self._write(*op)

    @rule(
        ops=st.lists(
            st.tuples(
                st.sampled_from(
                    ["create_task", "create_interaction", "edit_task", "move_task", "delete",
                     "malformed_task", "fix_task"]
                ),
                st.integers(0, 60),
                st.integers(-6, 0),
            ),
            max_size=5,
        ),
        nights=st.sampled_from([0, 0, 1, 1, 2, 3]),
        kind=st.sampled_from(
            ["nightly", "nightly", "nightly", "full", "date", "range_full", "range_incremental",
             "backfill", "intraday", "intraday"]
        ),
        back=st.integers(1, 6),
        span=st.integers(0, 3),
        tables=st.sampled_from([TABLES, TABLES, ("tasks",), ("user_interactions",)]),
        fault=st.sampled_from([None, None, None, None, "before_commit", "lost_after_one",
                               "interrupted_after_one"]),
    )  # fmt: skip
    def step(self, ops, nights, kind, back, span, tables, fault) -> None:
        for op in ops:
            self._write(*op)
        if nights and kind != "intraday":
            midnight = datetime.datetime.combine(self.clock.date(), datetime.time(), UTC)
            self.clock = midnight + nights * ONE_DAY + datetime.timedelta(hours=1)
        yesterday = self.clock.date() - ONE_DAY
        last = yesterday - (back - 1) * ONE_DAY
        first = last - span * ONE_DAY
        if kind == "backfill":
            for day in range((last - first).days + 1):
                chunk = first + day * ONE_DAY
                self.sync(tables, "full", (chunk, chunk), None)
        elif kind == "intraday":
            self.sync(tables, "intraday", None, fault)
        elif kind in ("nightly", "full"):
            self.sync(tables, "full" if kind == "full" else None, None, fault)
        elif kind == "date":
            self.sync(tables, None, (last, last), fault)
        else:
            self.sync(tables, kind.removeprefix("range_"), (first, last), fault)

    # -- a run ----------------------------------------------------------------------

    def sync(self, tables, mode, dates, fault) -> None:
        self.serial += 1
        run_id, read_time = f"r{self.serial}", self._tick()
        today = read_time.date()
        states = run_log.fold_states(self.runs, self.commits, tables)
        specs = [SPECS[t] for t in tables]
        try:
            if mode == "intraday":
                if any(s.newest_day is None or s.watermark is None for s in states.values()):
                    return  # refused (exit 2): a table the nightly never synced
                if any(
                    not SPECS[t].change_field and s.newest_day < today - ONE_DAY
                    for t, s in states.items()
                ):
                    # Not explored: before the nightly catches a table without a
                    # change field up, a create on a day it has yet to replace
                    # that a delete the same day cancels in the counts is missed
                    # (the nightly's replacement of that day repairs it).
                    return
                plan = plan_intraday(specs, states, today=today, verify_days=VERIFY_DAYS)
            else:
                plan = plan_windows(
                    specs, states, today=today, mode=mode, dates=dates,
                    max_catchup_days=7, verify_days=VERIFY_DAYS,
                )  # fmt: skip
        except CatchUpTooLong:
            return  # exit 2: nothing written (a backfill is the user's next step)
        start = {"run_id": run_id, "started_at": read_time, "read_time": read_time,
                 "status": RunStatus.RUNNING.value, "error": None, "tables": []}  # fmt: skip
        self.runs.append(start)
        if fault == "before_commit":
            self.runs.append({**start, "status": RunStatus.FAILED.value, "error": "lost"})
            return
        entries = []
        for i, window in enumerate(plan):
            if fault in ("lost_after_one", "interrupted_after_one") and i == 1:
                break
            days = self.commit(window, read_time, plan.yesterday)
            self.commits.setdefault(run_id, {})[window.table] = {
                "mode": window.mode,
                "newest_day": max(days) if days and not window.intraday else None,
                "advances_watermark": window.advances_watermark,
            }
            entries.append(TableVerdict(table=window.table, mode=window.mode,
                                        status=TableStatus.SUCCEEDED, replaced=True,
                                        replaced_days=tuple(days),
                                        advances_watermark=window.advances_watermark,
                                        intraday=window.intraday,
                                        fresh=window.makes_fresh))  # fmt: skip
        if fault == "lost_after_one":
            return  # the launcher lost BigQuery: only its start row and its commits remain
        if fault == "interrupted_after_one":
            # The launcher writes the verdict from the commits that landed and its
            # plan (``firestore_to_bq._failure``).
            planned = {w.table: (w.mode, w.intraday, w.makes_fresh) for w in plan}
            landed = self.commits.get(run_id, {})
            verdict = run_log.committed_entries(tables, landed, planned)
            self.runs.append({**start, "status": RunStatus.INTERRUPTED.value,
                              "tables": [e.to_json() for e in verdict]})  # fmt: skip
            return
        self.runs.append({**start, "status": RunStatus.SUCCEEDED.value,
                          "tables": [e.to_json() for e in entries]})  # fmt: skip
        for window in plan:
            self.check(window, window.horizon or plan.yesterday, dates is not None)

    def commit(self, window: TableWindow, read_time, yesterday) -> list[datetime.date]:
        """What the run's transaction does to one table; returns the days replaced whole."""
        table = self.tables[window.table]
        mine = {p: d for p, d in self.docs.items() if d.table == window.table}
        if window.incremental:
            return self._incremental(window, table, mine, read_time)
        if window.all_days:  # every day up to yesterday (or today) that holds a document
            through = window.horizon or window.end
            days = sorted({d.day for d in mine.values() if d.day <= through} | {window.end})
            days = sorted({*days, through})
            written = {p for p, d in mine.items() if d.valid and d.day <= through}
            for path in [p for p, (day, _) in table.items() if day <= through or p in written]:
                del table[path]
        else:
            edit_start, edit_end = day_bounds(window.start)[0], day_bounds(window.end)[1]
            late = {d.day for d in mine.values() if edit_start <= d.updated < edit_end}
            days = sorted(set(window.days) | {d for d in late if d <= yesterday})
            written = {p for p, d in mine.items() if d.valid and d.day in days}
            for path in [p for p, (day, _) in table.items() if day in days or p in written]:
                del table[path]
        for path, doc in mine.items():
            if doc.valid and doc.day in days:
                table[path] = (doc.day, doc.row)
            elif not doc.valid and (window.all_days or doc.day in days):
                self.letters.append((window.table, doc.day, read_time))
        return days

    def _incremental(self, window: TableWindow, table, mine, read_time) -> list[datetime.date]:
        spec = SPECS[window.table]
        changed = {}
        if window.change_by_partition:  # intraday, no change field: new documents
            changed = {p: d for p, d in mine.items() if d.ts >= window.watermark}
        elif window.watermark is not None:
            changed = {p: d for p, d in mine.items() if d.updated >= window.watermark}

        def count(ranges):
            return [sum(lo <= d.ts < hi for d in mine.values()) for lo, hi in ranges]

        def held(days):
            return {day: sum(r[0] == day for r in table.values()) for day in days}

        def leaving(days):
            return {day: sum(table.get(p, (None,))[0] == day for p in changed) for day in days}

        def lettered(days):
            since = read_time - VERIFY_DAYS * ONE_DAY
            return {d for t, d, at in self.letters if t == window.table and at >= since} & set(days)

        plan = plan_incremental(
            window.table, spec.partition.source[0], window.days, window.verify,
            window.watermark, [d.ts for d in changed.values()], count, held, leaving, 8,
            lettered,
        )  # fmt: skip
        read = dict(changed)
        for rng in plan.reads:
            read.update({p: d for p, d in mine.items() if rng.start <= d.ts < rng.end})
        horizon = window.horizon or window.end
        located = self.located_days(window, read)
        for path, (day, _) in list(table.items()):
            doc = read.get(path)
            # A read document loses its rows up to the horizon; past it only if
            # it is written (or a dead letter): bigquery.replace_days_sql.
            old = doc is not None and (located is None or day in located)
            old = old and (day <= horizon or doc.day <= horizon or not doc.valid)
            if day in plan.days or old:
                del table[path]
        for path, doc in read.items():
            if doc.valid and doc.day <= horizon:
                table[path] = (doc.day, doc.row)
            elif not doc.valid:
                self.letters.append((window.table, doc.day, read_time))
        return list(plan.days)

    def located_days(self, window: TableWindow, read: dict[str, Doc]) -> set | None:
        """The days the delete of old rows names (``tally.plan_incremental_table``):
        the read documents' days, and the days of those changed since the window's
        ``located_at`` at that snapshot (``transforms.previous_days``); None: all."""
        at = window.located_at
        if at is None:
            return None
        days = {d.day for d in read.values()}
        for path, doc in read.items():
            if doc.updated > at and (doc.created is None or doc.created <= at):
                before = self.version_at(path, at)
                if before is not None:
                    days.add(before.day)
        return days

    # -- the invariant --------------------------------------------------------------

    def check(self, window: TableWindow, yesterday: datetime.date, dated: bool) -> None:
        """The table equals a full rebuild over the days this run is responsible for
        (``yesterday``: its last, today after intraday runs)."""
        rebuild = {
            p: (d.day, d.row)
            for p, d in self.docs.items()
            if d.table == window.table and d.valid and d.day <= yesterday
        }
        # Days after its last stay as earlier runs left them (an intraday run's today).
        table = {p: r for p, r in self.tables[window.table].items() if r[0] <= yesterday}
        if dated:
            days = set(window.days)
            rebuild = {p: r for p, r in rebuild.items() if r[0] in days}
            table = {p: r for p, r in table.items() if r[0] in days}
        floor = yesterday - (VERIFY_DAYS - 1) * ONE_DAY
        # A hard delete older than --verify_days is for the weekly full run to find.
        table = {p: r for p, r in table.items() if p in self.docs or r[0] >= floor}
        assert table == rebuild, (window, sorted(set(table.items()) ^ set(rebuild.items())))

    @invariant()
    def fresh_as_of_is_true(self) -> None:
        """``status``'s "fresh as of" S: every document unchanged since S is in its
        table as it is, on every day up to the day before S (a dated run after S
        must not move it; one that did would claim days it never read)."""
        states = run_log.fold_states(self.runs, self.commits, TABLES)
        for table in TABLES:
            fresh = states[table].fresh_read_time
            if fresh is None:
                continue
            horizon = fresh.date() - ONE_DAY
            if wrote_today(states[table], fresh.date()):  # S's own day too: intraday runs
                horizon = fresh.date()
            for path, doc in self.docs.items():
                if doc.table != table or not doc.valid or doc.day > horizon:
                    continue
                if self.version_at(path, fresh) == doc:  # unchanged since S
                    assert self.tables[table].get(path) == (doc.day, doc.row), (table, path, fresh)
