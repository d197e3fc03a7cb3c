"""Documents in; typed rows, dead letters and per-table tallies out."""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from pipelines.convert.conversion import (
    ConversionError,
    Hashing,
    dead_letter_day,
    document_to_row,
    hmac_hasher,
    partition_day,
    protected,
)
from pipelines.convert.document import FirestoreDocument
from pipelines.convert.table_spec import EXTRA_COLUMN, TableSpec
from pipelines.plan.day_plan import Tally, add_tallies
from pipelines.state import dead_letters
from pipelines.state.leases import WorkerRenewal
from pipelines.state.stamp import RunStamp
from pipelines.transforms import metrics

#: Documents written in ``[start, end)`` have their days rebuilt (end None: no end).
EditWindow = tuple[datetime.datetime, datetime.datetime | None]


class _ConvertFn(beam.DoFn):
    """Every document becomes a row or a dead letter, tagged with its day.

    Which days get written is decided later, from the tallies of the whole read
    (a late edit found by one worker can add a day another worker's documents
    fall on), so everything is staged and the commit picks the days.
    """

    TALLY = "tally"
    #: Documents between two lease renewal checks (see ``leases.WorkerRenewal``).
    RENEW_EVERY = 1_000

    def __init__(
        self,
        specs: Sequence[TableSpec],
        stamp: RunStamp,
        edit_window: EditWindow,
        hashing: Hashing,
        renewal: WorkerRenewal | None = None,
    ):
        self._specs = {spec.name: spec for spec in specs}
        self._stamp = stamp
        self._edit_window = edit_window
        self._hashing = hashing
        self._renewal = renewal
        self._seen = 0

    def setup(self) -> None:
        self._run_id = self._stamp.run_id
        self._read_time = self._stamp.read_time_text  # formatted once, not per document
        self._started = self._stamp.started_text
        key = self._hashing.key()
        self._hasher = hmac_hasher(key) if key else None
        self._rejected = {
            name: metrics.counter(name, metrics.REJECTED) for name in self._specs
        }
        self._with_undeclared = {
            name: metrics.counter(name, metrics.ROWS_WITH_UNDECLARED) for name in self._specs
        }
        # Undeclared fields this worker has counted, per table (at most MAX_UNDECLARED_FIELDS).
        self._fields_seen: dict[str, set[str]] = {name: set() for name in self._specs}
        # Words a dead letter's reason may quote and its kind keeps: declared, not content.
        self._declared = {
            name: frozenset(v for c in spec.columns for v in c.allowed_values)
            for name, spec in self._specs.items()
        }

    def start_bundle(self) -> None:
        self._tallies: dict[str, Tally] = defaultdict(Tally)

    def finish_bundle(self) -> Iterator[Any]:
        for table, tally in self._tallies.items():
            yield beam.pvalue.TaggedOutput(
                self.TALLY, WindowedValue((table, tally), 0, [GlobalWindow()])
            )

    def process(self, doc: FirestoreDocument) -> Iterator[tuple[str, dict[str, Any]]]:
        spec = self._specs[doc.table]
        tally = self._tallies[doc.table]
        tally.returned += 1
        self._seen += 1
        if self._renewal is not None and self._seen % self.RENEW_EVERY == 0:
            self._renewal.beat()
        if doc.duplicate:  # the change query already returned it
            return
        tally.read += 1
        try:
            row = document_to_row(spec, doc, self._run_id, self._read_time, self._hasher)
        except ConversionError as error:
            day = dead_letter_day(spec, doc)  # None: no partition could hold it
            tally.bad[day] += 1
            kind = dead_letters.reason_kind(error.reason, self._declared[doc.table])
            tally.reasons[(day, error.field, kind)] += 1
            self._rejected[doc.table].inc()
            yield (
                dead_letters.TABLE,
                dead_letters.dead_letter_row(
                    doc,
                    error,
                    day,
                    self._run_id,
                    self._read_time,
                    self._started,
                    protected(spec, doc.data, self._hasher),
                ),
            )
        else:
            day = partition_day(spec, row)
            tally.rows[day] += 1
            if row.get(EXTRA_COLUMN):
                self._count_undeclared(doc.table, row[EXTRA_COLUMN])
            if doc.changed:
                tally.changed[day] += 1
            yield doc.table, row
        # Written (created or edited) during the window: its day must be rebuilt,
        # however old. Firestore's own update time, so no app field is trusted.
        if day is not None and doc.update_time is not None:
            since, until = self._edit_window
            if since <= doc.update_time and (until is None or doc.update_time < until):
                tally.edited.add(day)


    def _count_undeclared(self, table: str, extra: dict[str, Any]) -> None:
        """One count per row whose ``extra`` holds undeclared fields, and one per field
        the first time this worker sees it: a set lookup per field, no per-field count
        per row, and no more than ``MAX_UNDECLARED_FIELDS`` counters per table."""
        self._with_undeclared[table].inc()
        seen = self._fields_seen[table]
        if len(seen) >= metrics.MAX_UNDECLARED_FIELDS:
            return
        for field in extra:
            if field not in seen and len(seen) < metrics.MAX_UNDECLARED_FIELDS:
                seen.add(field)
                metrics.field_counter(table, field).inc()


class ConvertDocuments(beam.PTransform):
    """``(rows, tallies)``: ``(destination, row)`` pairs and ``(table, Tally)`` sums.

    ``specs``: the tables documents are converted for; ``stamp``: the run's id and
    snapshot on every row; ``edit_window``: documents written in ``[start, end)``
    have their days rebuilt (end None: up to the snapshot); ``hashing``: where the
    HMAC key of the ``hash`` policy comes from. ``renewal``: renews the run's
    leases as documents flow, for a job no launcher waits on (a Flex Template
    launch)."""

    def __init__(
        self,
        specs: Sequence[TableSpec],
        stamp: RunStamp,
        edit_window: EditWindow,
        hashing: Hashing | None = None,
        renewal: WorkerRenewal | None = None,
    ):
        super().__init__()
        self._args = (tuple(specs), stamp, edit_window, hashing or Hashing(), renewal)

    def expand(self, docs):
        convert = _ConvertFn(*self._args)
        outputs = docs | "Convert" >> beam.ParDo(convert).with_outputs(
            _ConvertFn.TALLY, main="rows"
        )
        tallies = outputs[_ConvertFn.TALLY] | "SumTallies" >> beam.CombinePerKey(add_tallies)
        return outputs.rows, tallies
