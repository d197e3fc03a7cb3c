"""The end-of-run report: per table, documents read, rows written per day, dead letters,
and undeclared fields kept in ``extra``.

A run that writes is reported from its ``_sync_runs`` row, the verdict its own
``RecordRun`` step reached inside the pipeline (one report, on every runner); a
dry run, which writes no audit row, from Beam metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.cli.options import SyncConfig
from pipelines.state import dead_letters
from pipelines.state.verdict import TableStatus, entries
from pipelines.transforms import metrics


@dataclass
class TableSummary:
    table: str
    read: int = 0
    returned: int = 0  # documents Firestore returned (cost); ``read`` counts each once
    previous: int = 0  # previous versions read (cost), to find changed documents' old rows
    rows: int = 0
    dead_lettered: int = 0
    outside_window: int = 0
    written: int = 0
    days_replaced: int = 0
    rows_per_day: dict[str, int] = field(default_factory=dict)
    written_per_day: dict[str, int] = field(default_factory=dict)
    #: From the audit row: the pipeline's own verdict.
    status: TableStatus | None = None
    #: The commonest ``(field, reason kind, count)`` of the dead letters.
    dead_letter_reasons: list[tuple[str, str, int]] = field(default_factory=list)
    #: Rows converted whose ``extra`` holds fields no column declares, and how many
    #: distinct fields (at most about ``metrics.MAX_UNDECLARED_FIELDS``): from Beam
    #: counters, so absent when the run's counters are (a handed-over launch).
    undeclared_rows: int = 0
    undeclared_fields: int = 0

    def reconciles(self, dry_run: bool) -> bool:
        if self.status is not None:
            return self.status is TableStatus.SUCCEEDED
        accounted = self.read == self.rows + self.dead_lettered + self.outside_window
        return accounted and (dry_run or self.written == self.rows)


@dataclass
class RunSummary:
    config: SyncConfig
    tables: list[TableSummary]
    #: Handed to the runner without waiting (Flex Template launch): no figures yet.
    submitted: bool = False

    @property
    def reconciles(self) -> bool:
        return all(t.reconciles(self.config.dry_run) for t in self.tables)

    @property
    def documents_read(self) -> int:
        return sum(t.read for t in self.tables)

    @property
    def documents_returned(self) -> int:
        return sum(t.returned for t in self.tables)

    def render(self) -> str:
        c = self.config
        if self.submitted:
            return (
                f"run {c.run_id}: {c.describe_window()} submitted; "
                "its outcome and counts are recorded in _sync_runs"
            )
        mode = "DRY RUN (nothing written)" if c.dry_run else f"dataset {c.project}.{c.dataset}"
        lines = [
            f"run {c.run_id}: {c.describe_window()}, snapshot {c.read_time_text}, "
            f"{mode}",
            f"{'table':<22}{'read':>9}{'written':>9}{'dead':>7}{'outside':>9}  check",
        ]
        for t in self.tables:
            written = t.rows if c.dry_run else t.written
            ok = "ok" if t.reconciles(c.dry_run) else "MISMATCH"
            lines.append(
                f"{t.table:<22}{t.read:>9}{written:>9}{t.dead_lettered:>7}"
                f"{t.outside_window:>9}  {ok}"
            )
            per_day = t.rows_per_day if c.dry_run else t.written_per_day
            for day in sorted(per_day):
                n = per_day[day]
                lines.append(f"  {day}: {n} {'row' if n == 1 else 'rows'}")
        previous = sum(t.previous for t in self.tables)
        lines.append(
            f"firestore reads: {self.documents_returned} documents returned"
            + (f", {previous} previous versions (to find moved rows)" if previous else "")
        )
        lines.append(
            "read = written + dead-lettered + outside the replaced days: "
            + ("reconciled" if self.reconciles else "NOT reconciled")
        )
        lines.extend(self.dead_letter_line(t) for t in self.tables if t.dead_lettered)
        lines.extend(self.undeclared_line(t) for t in self.tables if t.undeclared_rows)
        return "\n".join(lines)

    def undeclared_line(self, t: TableSummary) -> str:
        """One line per table whose rows hold undeclared fields: how many rows and fields,
        and the command that names them. Not the names: a field name is document content,
        which never reaches the console (docs/guarantees.md); ``schema drift`` reads them
        from BigQuery."""
        c = self.config
        n, k = t.undeclared_rows, t.undeclared_fields
        if k >= metrics.MAX_UNDECLARED_FIELDS:
            fields = f"{metrics.MAX_UNDECLARED_FIELDS} or more fields"
        elif k:
            fields = f"{k} field{'' if k == 1 else 's'}"
        else:  # the fields' counters were not kept
            fields = "fields"
        command = f"firestore-to-bq schema drift --project {c.project} --dataset {c.dataset or 'D'}"
        when = " once a run has written them" if c.dry_run else ""
        return (
            f"{t.table}: {n} row{'' if n == 1 else 's'} read hold {fields} no column declares, "
            f"kept as JSON in extra; to name them and the columns to declare{when}: {command}"
        )

    def dead_letter_line(self, t: TableSummary) -> str:
        """One line per table with dead letters: how many, why, and where to read them."""
        c = self.config
        n = t.dead_lettered
        reasons = dead_letters.reasons_text(t.dead_letter_reasons)
        head = f"{t.table}: {n} document{'' if n == 1 else 's'} dead-lettered"
        head += f", top reasons: {reasons}" if reasons else ""
        if c.dry_run or not c.dataset:
            return f"{head}; a run that writes records them in {dead_letters.TABLE}"
        query = dead_letters.query_sql(c.project, c.dataset, t.table, c.run_id, c.started_at)
        return f"{head}; read them: {query}"


def summarize(config: SyncConfig, values: dict[str, int]) -> RunSummary:
    """The report from Beam counters (a dry run, which writes no audit row)."""
    tables = []
    for spec in config.tables:
        table = spec.name

        def value(what: str, table: str = table) -> int:
            return values.get(metrics.name(table, what), 0)

        tables.append(
            TableSummary(
                table=table,
                read=value(metrics.DOCUMENTS_READ),
                returned=value(metrics.DOCUMENTS_RETURNED),
                previous=value(metrics.PREVIOUS_READS),
                rows=value(metrics.ROWS),
                dead_lettered=value(metrics.DEAD_LETTERED),
                outside_window=value(metrics.OUTSIDE_WINDOW),
                written=value(metrics.ROWS_WRITTEN),
                days_replaced=value(metrics.DAYS_REPLACED),
                rows_per_day=metrics.per_day(values, table, metrics.ROWS_PER_DAY),
                written_per_day=metrics.per_day(values, table, metrics.WRITTEN_PER_DAY),
                dead_letter_reasons=metrics.reasons(values, table)[: dead_letters.TOP_REASONS],
            )
        )
    return with_undeclared(RunSummary(config, tables), values)


def with_undeclared(summary: RunSummary, values: dict[str, int]) -> RunSummary:
    """``summary`` with each table's undeclared fields from the run's Beam counters
    (the audit row does not keep them: they only point at ``schema drift``)."""
    for t in summary.tables:
        t.undeclared_rows = values.get(metrics.name(t.table, metrics.ROWS_WITH_UNDECLARED), 0)
        t.undeclared_fields = metrics.undeclared_fields(values, t.table)
    return summary


def from_audit(config: SyncConfig, row: dict) -> RunSummary:
    """The report of a run that wrote, from the audit row its pipeline recorded."""
    tables = []
    for t in entries(row):
        counts = t.counted  # a run that stopped before counting: nothing counted
        tables.append(
            TableSummary(
                table=t.table,
                read=counts.documents_read,
                returned=counts.documents_returned,
                previous=counts.previous_reads,
                rows=counts.rows_written,
                dead_lettered=counts.dead_lettered,
                outside_window=counts.outside_window,
                written=counts.rows_written,
                days_replaced=counts.days_replaced,
                written_per_day={d.isoformat(): n for d, n in counts.rows_per_day.items()},
                status=t.status,
                dead_letter_reasons=list(counts.dead_letter_reasons),
            )
        )
    return RunSummary(config, tables)
