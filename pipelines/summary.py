"""The end-of-run report: per table, documents read, rows written per day, dead letters.

Built from Beam metrics, so it is the same on the DirectRunner and on Dataflow.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from apache_beam.metrics.metric import MetricsFilter

from pipelines.options import SyncConfig
from pipelines.transforms.read_firestore import NAMESPACE


@dataclass
class TableSummary:
    table: str
    read: int = 0
    returned: int = 0  # documents Firestore returned (cost); ``read`` counts each once
    rows: int = 0
    dead_lettered: int = 0
    outside_window: int = 0
    written: int = 0
    days_replaced: int = 0
    rows_per_day: dict[str, int] = field(default_factory=dict)
    written_per_day: dict[str, int] = field(default_factory=dict)

    def reconciles(self, dry_run: bool) -> bool:
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
                f"run {c.run_id}: window {c.start_date}..{c.end_date} submitted; "
                "its outcome and counts are recorded in _sync_runs"
            )
        mode = "DRY RUN (nothing written)" if c.dry_run else f"dataset {c.project}.{c.dataset}"
        lines = [
            f"run {c.run_id}: window {c.start_date}..{c.end_date}, snapshot {c.read_time_text}, "
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
                lines.append(f"  {day}: {per_day[day]} rows")
        lines.append(f"firestore reads: {self.documents_returned} documents returned")
        lines.append(
            "read = written + dead-lettered + outside the replaced days: "
            + ("reconciled" if self.reconciles else "NOT reconciled")
        )
        return "\n".join(lines)


def counters(result) -> dict[str, int]:
    """Committed counter values by name (attempted where a runner has no committed)."""
    totals: dict[str, int] = defaultdict(int)
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    for counter in query["counters"]:
        try:
            value = counter.committed
        except Exception:  # some runners only report attempted values
            value = None
        if value is None:
            value = counter.attempted
        totals[counter.key.metric.name] += int(value or 0)
    return dict(totals)


def summarize(config: SyncConfig, values: dict[str, int]) -> RunSummary:
    tables = []
    for spec in config.tables:
        name = spec.name
        summary = TableSummary(
            table=name,
            read=values.get(f"{name}.documents_read", 0),
            returned=values.get(f"{name}.documents_returned", 0),
            rows=values.get(f"{name}.rows", 0),
            dead_lettered=values.get(f"{name}.dead_lettered", 0),
            outside_window=values.get(f"{name}.outside_window", 0),
            written=values.get(f"{name}.rows_written", 0),
            days_replaced=values.get(f"{name}.days_replaced", 0),
        )
        for key, value in values.items():
            if key.startswith(f"{name}.rows@"):
                summary.rows_per_day[key.split("@", 1)[1]] = value
            elif key.startswith(f"{name}.written@"):
                summary.written_per_day[key.split("@", 1)[1]] = value
        tables.append(summary)
    return RunSummary(config, tables)
