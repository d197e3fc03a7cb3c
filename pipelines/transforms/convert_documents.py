"""Documents in; typed rows, dead letters and per-table tallies out."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from pipelines.cli.options import SyncConfig
from pipelines.convert.conversion import (
    ConversionError,
    dead_letter_day,
    document_to_row,
    hmac_hasher,
    partition_day,
    protected,
)
from pipelines.convert.document import FirestoreDocument
from pipelines.plan.day_plan import Tally, add_tallies
from pipelines.state import dead_letters
from pipelines.state.leases import WorkerRenewal
from pipelines.transforms import metrics


def hash_key(config: SyncConfig) -> bytes | None:
    """The HMAC key: from Secret Manager on workers, or an environment variable locally.

    Never from the repository or the pipeline options, which Dataflow shows in its UI.
    """
    if config.hash_key_secret:
        from google.cloud import secretmanager

        client = secretmanager.SecretManagerServiceClient()
        return client.access_secret_version(name=config.hash_key_secret).payload.data
    key = os.environ.get(config.hash_key_env)
    return key.encode("utf-8") if key else None


class _ConvertFn(beam.DoFn):
    """Every document becomes a row or a dead letter, tagged with its day.

    Which days get written is decided later, from the tallies of the whole read
    (a late edit found by one worker can add a day another worker's documents
    fall on), so everything is staged and the commit picks the days.
    """

    TALLY = "tally"
    #: Documents between two lease renewal checks (see ``leases.WorkerRenewal``).
    RENEW_EVERY = 1_000

    def __init__(self, config: SyncConfig, renewal: WorkerRenewal | None = None):
        self._config = config
        self._specs = config.tables_by_name
        self._edit_window = config.edit_window
        self._renewal = renewal
        self._seen = 0

    def setup(self) -> None:
        self._read_time = self._config.read_time_text  # formatted once, not per document
        self._started = self._config.started_text
        key = hash_key(self._config)
        self._hasher = hmac_hasher(key) if key else None
        self._rejected = {
            name: metrics.counter(name, metrics.REJECTED) for name in self._specs
        }
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
        config = self._config
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
            row = document_to_row(spec, doc, config.run_id, self._read_time, self._hasher)
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
                    config.run_id,
                    self._read_time,
                    self._started,
                    protected(spec, doc.data, self._hasher),
                ),
            )
        else:
            day = partition_day(spec, row)
            tally.rows[day] += 1
            if doc.changed:
                tally.changed[day] += 1
            yield doc.table, row
        # Written (created or edited) during the window: its day must be rebuilt,
        # however old. Firestore's own update time, so no app field is trusted.
        if day is not None and doc.update_time is not None:
            since, until = self._edit_window
            if since <= doc.update_time and (until is None or doc.update_time < until):
                tally.edited.add(day)


class ConvertDocuments(beam.PTransform):
    """``(rows, tallies)``: ``(destination, row)`` pairs and ``(table, Tally)`` sums.

    ``renewal``: renews the run's leases as documents flow, for a job no launcher
    waits on (a Flex Template launch)."""

    def __init__(self, config: SyncConfig, renewal: WorkerRenewal | None = None):
        super().__init__()
        self._config = config
        self._renewal = renewal

    def expand(self, docs):
        convert = _ConvertFn(self._config, self._renewal)
        outputs = docs | "Convert" >> beam.ParDo(convert).with_outputs(
            _ConvertFn.TALLY, main="rows"
        )
        tallies = outputs[_ConvertFn.TALLY] | "SumTallies" >> beam.CombinePerKey(add_tallies)
        return outputs.rows, tallies
