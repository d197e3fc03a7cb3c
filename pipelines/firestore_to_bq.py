"""Sync Firestore collections into day-partitioned BigQuery tables.

    python -m pipelines.firestore_to_bq --project P --dataset D \\
        [--date YYYY-MM-DD | --start_date YYYY-MM-DD --end_date YYYY-MM-DD] \\
        [--collections tasks,interactions] [--dry_run] [Beam options…]

The pipeline:

    Read Firestore ──► Convert ──► Stage (load jobs) ──► Commit (one transaction per table)
                          └──► tallies ──► Plan days ──────┘      └──► Record run (audit)

Every run reads one Firestore snapshot and, for each table, replaces exactly
the planned days: the window, the look-back, and days holding late edits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import io
import logging
import os
import signal
import sys
import threading
from collections.abc import Collection, Iterator, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
    TestOptions,
)
from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator
from apache_beam.runners.runner import PipelineState, create_runner
from google.api_core import exceptions as api_exceptions
from google.api_core.exceptions import GoogleAPICallError, RetryError

from pipelines.cli.arguments import (
    HELP,
    HELP_BEAM,
    beam_help,
    check_known,
    pop_dry_run,
    pop_log_level,
    sync_help,
)
from pipelines.cli.options import SyncConfig, SyncOptions, UsageError, resolve
from pipelines.cli.summary import RunSummary, from_audit, summarize, with_undeclared
from pipelines.convert.table_spec import TableSpec
from pipelines.plan import quotas, snapshot
from pipelines.plan.windows import plan_intraday, plan_windows
from pipelines.refusals import Refusal
from pipelines.services import bigquery as bq
from pipelines.services import error_text, reachability
from pipelines.state import leases, leftovers, run_log
from pipelines.state.run_log import audit_row, read_audit_row, table_states, write_audit_row
from pipelines.state.tables import create_staging_tables, drop_staging_tables, prepare_tables
from pipelines.state.verdict import RunStatus, UnknownVerdict, entries, is_verdict
from pipelines.transforms.convert_documents import ConvertDocuments
from pipelines.transforms.metrics import committed
from pipelines.transforms.plan_days import PlanDays
from pipelines.transforms.previous_days import PreviousDays
from pipelines.transforms.read_firestore import ReadFromFirestore
from pipelines.transforms.read_incremental import ReadIncremental
from pipelines.transforms.record_run import RecordRun, TablesNotReplaced
from pipelines.transforms.write_bigquery import Guards, WriteDayPartitions

_LOG = logging.getLogger("firestore_to_bq")
#: Set by the Flex Template launcher image (see Dockerfile).
FLEX_TEMPLATE_ENV = "FLEX_TEMPLATE_PYTHON_PY_FILE"


def parse_options(args: Sequence[str]) -> PipelineOptions:
    """Beam options, with argparse's multi-line usage dump turned into one UsageError.

    An argument no option accepts is refused (Beam would only warn and drop it).
    """
    options = PipelineOptions(args)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            check_known(args)
            options.view_as(SyncOptions)
            options.view_as(StandardOptions)
    except SystemExit:
        lines = captured.getvalue().strip().splitlines() or ["invalid arguments"]
        raise UsageError(lines[-1].split("error: ", 1)[-1]) from None
    return options


def runs_in_process(options: PipelineOptions) -> bool:
    """Whether the run's pipeline runs here (the DirectRunner, the default), not on Dataflow."""
    return options.view_as(StandardOptions).runner in (None, "DirectRunner", "direct")


def hands_over(options: PipelineOptions) -> bool:
    """Whether this is a Flex Template launch, which submits the job and exits.

    The launcher image sets ``FLEX_TEMPLATE_PYTHON_PY_FILE``; the same image on Cloud
    Run Jobs runs the pipeline in process (``--runner DirectRunner``), and such a run
    must wait for its pipeline and report its summary like any local run, or the
    container would exit before anything was read.
    """
    return bool(os.environ.get(FLEX_TEMPLATE_ENV)) and not runs_in_process(options)


def local_runner(options: PipelineOptions):
    """The in-process FnApiRunner when the DirectRunner is asked for.

    Beam 2.77's DirectRunner first tries to download the Prism runner from the
    internet before falling back to this same runner for a batch pipeline; going
    straight to it keeps local runs fast and offline-safe. Any other runner
    (Dataflow) is left to Beam.
    """
    if runs_in_process(options):
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return FnApiRunner()
    return None


def build(
    pipeline: beam.Pipeline,
    config: SyncConfig,
    runner: str = "DirectRunner",
    renewal: leases.WorkerRenewal | None = None,
) -> None:
    """Wire the sync into ``pipeline``: the same graph on every runner.

    Full-mode tables are read whole; incremental ones by their change and range
    queries. Both feed the same conversion, planning, write and audit.
    ``renewal``: the job's workers renew its leases (no launcher waits on it).
    """
    full = [s for s in config.tables if not config.window(s.name).incremental]
    incremental = [config.window(s.name) for s in config.tables if s not in full]
    reads, read_plans = [], None
    if full:
        reads.append(
            pipeline
            | "ReadFirestore"
            >> ReadFromFirestore(
                config.project,
                full,
                config.read_time,
                database=config.database,
                num_splits=config.num_splits,
                retry_timeout=config.firestore_retry_timeout,
            )
        )
    previous = None  # the days changed documents were on, where they can be known
    if incremental:
        changed, read_plans = pipeline | "ReadIncremental" >> ReadIncremental(
            config.source,
            config.target,
            config.tables,
            incremental,
            config.read_time,
            config.num_splits,
            letters_since=config.started_at - datetime.timedelta(days=config.verify_days),
        )
        reads.append(changed)
        located = {w.table: w.located_at for w in incremental if w.located_at is not None}
        if located:
            previous = changed | "PreviousDays" >> PreviousDays(
                config.project,
                [config.tables_by_name[t] for t in located],
                located,
                read_plans=read_plans,
                database=config.database,
                retry_timeout=config.firestore_retry_timeout,
            )
    documents = reads[0] if len(reads) == 1 else tuple(reads) | "Documents" >> beam.Flatten()
    rows, tallies = documents | "ConvertDocuments" >> ConvertDocuments(
        config.tables, config.stamp, config.edit_window, config.hashing, renewal
    )
    if previous is not None:
        tallies = (tallies, previous) | "AllTallies" >> beam.Flatten()
    plans = tallies | "PlanDays" >> PlanDays(
        config.windows, config.required_days, config.yesterday, config.dry_run, read_plans
    )
    if not config.dry_run:
        guards = Guards(config.max_dead_letter_share, config.allow_shrink)
        commits = rows | "WriteBigQuery" >> WriteDayPartitions(
            config.target, config.tables, config.windows, config.stamp, plans,
            config.load_batch_rows, guards, renewal,
        )  # fmt: skip
        commits | "RecordRun" >> RecordRun(
            config.target, config.stamp, config.windows, config.planned_window, runner, plans
        )


def plan_run(config: SyncConfig, now: datetime.datetime) -> SyncConfig:
    """Give every table its window, mode and watermark from ``_sync_runs``; a plan
    over a BigQuery limit (:mod:`pipelines.plan.quotas`) or a catch-up too long is
    refused (a :class:`~pipelines.refusals.Refusal`) before reading."""
    states = {}
    if config.dataset:
        client = bq.make_client(config.project, config.location)
        try:
            states = table_states(client, config.dataset, [t.name for t in config.tables], now)
        except api_exceptions.NotFound:  # a dry run before the first run: no history
            states = {}
    first_days = reconcile_first_days(config) if config.mode == "reconcile" else None
    backfilled = [
        spec
        for spec in config.tables
        if spec.change_field
        and spec.supports_incremental
        and states.get(spec.name) is not None
        and states[spec.name].watermark is None
        and states[spec.name].dated_windows
    ]
    if first_days is None and backfilled and not config.explicit_dates and config.mode != "full":
        # Backfill chunks give a watermark only if they cover the table from its
        # oldest document (windows.backfill_watermark): one read per table.
        first_days = reconcile_first_days(config, backfilled, bigquery=False)
        for spec in backfilled:  # no document holds a partition time: none is older
            first_days.setdefault(spec.name, min(w[0] for w in states[spec.name].dated_windows))
    hint = f"--project {config.project} --dataset {config.dataset} "
    today = now.astimezone(datetime.UTC).date()
    if config.intraday:
        plan = plan_intraday(
            config.tables, states, today=today, verify_days=config.verify_days, nightly_hint=hint
        )
        return dataclasses.replace(config, plan=plan)
    plan = plan_windows(
        config.tables,
        states,
        today=today,
        mode=config.mode,
        dates=(config.start_date, config.end_date) if config.explicit_dates else None,
        max_catchup_days=config.max_catchup_days,
        verify_days=config.verify_days,
        backfill_hint=hint,
        first_days=first_days,
    )
    quotas.check(
        plan,
        lookback_days=config.lookback_days,
        load_batch_rows=config.load_batch_rows,
        num_splits=config.num_splits,
        expected_rows={  # a full run loads about what the last one wrote
            t: s.last_rows
            for t, s in states.items()
            if s.last_rows is not None and not plan.window(t).incremental
        },
        target=hint,
    )
    return dataclasses.replace(config, plan=plan)


def reconcile_first_days(
    config: SyncConfig, specs: Sequence[TableSpec] | None = None, bigquery: bool = True
) -> dict[str, datetime.date]:
    """Each range-queryable table's oldest day, the older of BigQuery's ``MIN`` of
    the partition column (unless ``bigquery`` is false) and Firestore's oldest
    timestamp there (one read). ``specs``: those tables only (default: the run's)."""
    from pipelines.services import firestore as fs

    use_bigquery = bigquery and bool(config.dataset)
    client = bq.make_client(config.project, config.location) if use_bigquery else None
    firestore = fs.make_client(config.project, config.database)
    retry = fs.read_retry(config.firestore_retry_timeout)
    first = {}
    for spec in config.tables if specs is None else specs:
        if not spec.supports_incremental:
            continue
        days = []
        if client is not None:
            with contextlib.suppress(api_exceptions.NotFound):
                day = bq.first_day(client, config.dataset, spec.name, spec.partition_column)
                days += [day] if day else []
        oldest = fs.oldest_time(firestore, spec, spec.partition.source[0], config.read_time, retry)
        days += [oldest.astimezone(datetime.UTC).date()] if oldest else []
        if days:
            first[spec.name] = min(days)
    return first


def check_runner(options: PipelineOptions) -> None:
    """Refuse, before anything is leased, a runner Beam does not know or one whose
    own required options are missing or malformed (``--region``,
    ``--temp_location`` for Dataflow): Beam's own validator, run on a copy of the
    options in Beam's dry-run mode, so it neither edits them nor calls GCS.

    One departure from Beam: with no usable ``--temp_location`` or
    ``--staging_location``, Beam would look for (or create) a default bucket over
    the network, waiting out its retries without credentials; here that is
    refused at once, as the docs always pass ``--temp_location``."""
    if runs_in_process(options):
        return
    name = options.view_as(StandardOptions).runner
    try:
        runner = create_runner(name)
    except ValueError:
        raise UsageError(
            f"--runner {name}: not a Beam runner; use DirectRunner (the default, in "
            "process) or DataflowRunner"
        ) from None
    probe = PipelineOptions.from_dictionary(options.get_all_options(drop_default=True))
    probe.view_as(TestOptions).dry_run = True
    validator = PipelineOptionsValidator(probe, runner)
    errors = []
    if validator.is_service_runner():
        cloud = probe.view_as(GoogleCloudOptions)
        paths = [
            validator.validate_gcs_path(cloud, option)
            for option in ("temp_location", "staging_location")
        ]
        if all(paths):  # neither is usable: Beam would go looking for a default bucket
            errors += paths[0]
            cloud.temp_location = cloud.staging_location = "gs://f2bq-checked-above/temp"
    errors += validator.validate()
    if errors:
        listed = "; ".join(dict.fromkeys(e.strip().rstrip(".") for e in errors))
        raise UsageError(f"--runner {name}: {listed}")


def run(argv: Sequence[str] | None = None, now: datetime.datetime | None = None) -> RunSummary:
    """Check, plan, lease, run the pipeline and summarise it.

    Everything that can be refused is refused before the leases are taken (the
    options, the runner, the plan, the snapshot horizon); from the first lease
    on, every way the run ends records a verdict in ``_sync_runs`` and gives
    back what it took (:func:`_failure`), and while it lives its leases are
    renewed (``leases.Holder.heartbeat``).

    ``now``: the moment the run acts as of (its "yesterday"); default: the clock.
    """
    dry_run, beam_args = pop_dry_run(list(sys.argv[1:] if argv is None else argv))
    options = parse_options(beam_args)
    check_runner(options)
    acting_as = now  # a given moment also dates the leases (tests run "a day later")
    now = now or datetime.datetime.now(datetime.UTC)
    config = resolve(options, dry_run=dry_run, now=now)
    reachability.check(config)
    if not dry_run:
        prepare_tables(config)
    config = plan_run(config, now)
    config = snapshot.guard(config)  # refuses a read that would outlast the snapshot
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    pipeline = beam.Pipeline(runner=local_runner(options), options=options)
    handover = hands_over(options)
    renewal = None
    if not runs_in_process(options) and not dry_run:
        renewal = leases.WorkerRenewal(
            config.project, config.location, config.dataset, config.run_id, config.lease_minutes
        )
    build(pipeline, config, runner, renewal)  # a graph that cannot be built takes nothing
    _LOG.info(
        "run %s: %d table(s), %s (%s), snapshot %s",
        config.run_id,
        len(config.tables),
        config.describe_window(),
        ", ".join(f"{w.table} {w.mode}" for w in config.plan),
        config.read_time_text,
    )
    if dry_run:
        return _dry_run(pipeline, config, runner)
    started = datetime.datetime.now(datetime.UTC)
    clock = None
    if acting_as is not None:  # dated as of ``now``, moving with the real clock
        clock = lambda: acting_as + (datetime.datetime.now(datetime.UTC) - started)  # noqa: E731
    holder = leases.holder(config, clock, handover=handover)
    try:
        holder.take(config.lease_wait_seconds)  # after planning: a refused plan never waits
        with holder.heartbeat():
            return _run_leased(pipeline, options, config, runner, holder)
    except leases.LeaseHeld:
        raise  # it holds nothing: nothing to record or give back
    except (Exception, KeyboardInterrupt) as exc:
        # KeyboardInterrupt: Ctrl-C, or SIGTERM (see ``main``) from Cloud Run,
        # Kubernetes or a scheduler stopping the job.
        if not holder.sent:  # stopped before it asked for a lease: it holds nothing
            raise
        verdict = _failure(config, runner, exc)
        if isinstance(verdict, RunFailed):
            raise verdict from exc
        # Stopped after RecordRun wrote the verdict: the tables and the audit
        # are that verdict's, so the run reports it rather than "interrupted".
        _LOG.warning(
            "run %s: stopped after it recorded its outcome (%s); that outcome stands",
            config.run_id,
            verdict["status"],
        )
        # In case the signal came before the job's last step dropped them and gave
        # the leases back.
        with contextlib.suppress(Exception):
            drop_staging_tables(config.target, config.run_id, config.tables)
            leases.release(config)
        return from_audit(config, verdict)


def _dry_run(pipeline: beam.Pipeline, config: SyncConfig, runner: str) -> RunSummary:
    """Read and convert, write nothing: no lease, no staging, no audit."""
    try:
        result = pipeline.run()
        state = result.wait_until_finish()
        if state not in (None, PipelineState.DONE):
            raise RuntimeError(f"pipeline ended in state {state}")
    except (Exception, KeyboardInterrupt) as exc:
        verdict = _failure(config, runner, exc)
        raise verdict from exc
    return summarize(config, committed(result))


def _run_leased(
    pipeline: beam.Pipeline,
    options: PipelineOptions,
    config: SyncConfig,
    runner: str,
    holder: leases.Holder,
) -> RunSummary:
    """The run once it holds its leases: settle what dead runs left, write the
    ``running`` row (so a run that dies before its verdict still shows), create
    the staging tables, run the pipeline and read its verdict."""
    with contextlib.suppress(Exception):  # best effort: the next run tries again
        leftovers.settle(
            holder.client, config.project, config.dataset, holder.found_lapsed,
            config.run_id, holder.clock(),
        )  # fmt: skip
    running = audit_row(config.stamp, runner, config.planned_window, RunStatus.RUNNING, [])
    write_audit_row(config.target, running)
    create_staging_tables(config)
    result = pipeline.run()
    if hands_over(options):
        # A Flex Template launcher must hand the job over and exit; the job's
        # own RecordRun step writes the outcome to _sync_runs, and its workers
        # renew the leases from here on.
        _LOG.info("launched from a Flex Template: submitted run %s", config.run_id)
        return RunSummary(config, [], submitted=True)
    state = result.wait_until_finish()
    if state not in (None, PipelineState.DONE):
        raise RuntimeError(f"pipeline ended in state {state}")
    verdict = _read_verdict(config)
    if verdict is None:  # cannot happen after RecordRun succeeded, but never report nothing
        return summarize(config, committed(result))
    summary = from_audit(config, verdict)
    try:
        values = committed(result)
    except Exception:  # the counters only add the undeclared-fields line; the verdict stands
        _LOG.debug("run %s: no counters for the summary", config.run_id, exc_info=True)
        return summary
    return with_undeclared(summary, values)


def _read_verdict(config: SyncConfig) -> dict | None:
    """The run's ``_sync_runs`` row; a signal while reading it is let go (later
    ones too, see :func:`_stop_on_signals`) and the row read again, since the
    outcome it holds is recorded already."""
    try:
        return read_audit_row(config)
    except KeyboardInterrupt:
        ACTING_ON_STOP.set()
        return read_audit_row(config)


class RunFailed(RuntimeError):
    """The run failed; ``audit`` is its ``_sync_runs`` row when one could be read."""

    def __init__(self, message: str, audit: dict | None = None, interrupted: bool = False):
        super().__init__(message)
        self.audit = audit
        self.interrupted = interrupted


def _root_cause(exc: BaseException, keep: Collection[str] = ()) -> str:
    """One line naming what went wrong, not the runner's wrapping of it.

    Scrubbed of quoted values (see :mod:`pipelines.services.error_text`); ``keep``: names
    that may stay."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    preferred = [
        e for e in seen if isinstance(e, (TablesNotReplaced, GoogleAPICallError, RetryError))
    ]
    chosen = preferred[0] if preferred else exc
    return error_text.one_line(chosen, keep, limit=400)


def _failure(config: SyncConfig, runner: str, exc: BaseException) -> RunFailed | dict:
    """Record the failure where possible and leave no staging tables behind.

    A run stopped by a signal after RecordRun wrote its verdict has not failed:
    that verdict row is returned instead, and stands.

    Bounded: BigQuery is probed once (a Ctrl-C must not wait out a lost
    server's retries). If it cannot be reached (the reason the run failed,
    often), the probe says so within its deadline and nothing more is tried;
    its leases, no longer renewed, lapse within ``--lease_minutes``, and the
    first run after that records the verdict and drops the staging tables
    (:mod:`pipelines.state.leftovers`).
    """
    interrupted = isinstance(exc, KeyboardInterrupt) or STOPPED.is_set()
    if interrupted:
        ACTING_ON_STOP.set()  # a second signal must not cut the recording short
        message = "interrupted (SIGINT or SIGTERM); the tables it had not committed are as before"
    else:
        message = _root_cause(exc, error_text.names(config.tables))

    def log() -> None:
        _LOG.error("run %s %s: %s", config.run_id, "stopped" if interrupted else "failed", message)

    if config.dry_run:
        log()
        return RunFailed(message, interrupted=interrupted)
    try:
        reachability.check_bigquery(config.project, config.dataset, config.location)
    except reachability.Unreachable as lost:
        # BigQuery went away during the run (often why it failed): the probe's line
        # names the server and what to do, which the runner's timeout does not.
        log()
        _LOG.warning("could not record the failure: %s", lost)
        if not interrupted:
            message = f"{message}; then {lost}; the tables it had not committed are as before"
        return RunFailed(message, None, interrupted)
    row, logged = None, False
    try:
        row = _read_verdict(config)
        if interrupted and row is not None and is_verdict(row):
            return row
        log()
        logged = True
        if row is None:  # the pipeline never reached its audit step
            client = bq.make_client(config.project, config.location)
            landed = run_log.committed(client, config.dataset, config.run_id).get(config.run_id, {})
            status = RunStatus.INTERRUPTED if interrupted else RunStatus.FAILED
            planned = {w.table: (w.mode, w.intraday, w.makes_fresh) for w in config.plan}
            stopped = run_log.committed_entries([t.name for t in config.tables], landed, planned)
            row = audit_row(config.stamp, runner, config.planned_window, status, stopped, message)
            write_audit_row(config.target, row)
        drop_staging_tables(config.target, config.run_id, config.tables)
    except Exception as cleanup_exc:  # noqa: BLE001 - the original failure matters more
        if not logged:
            log()
        _LOG.warning("could not record the failure: %s", _root_cause(cleanup_exc))
    try:
        leases.release(config)  # the job's last step may have given them back already
    except Exception as cleanup_exc:  # noqa: BLE001
        _LOG.warning("could not give back the leases: %s", _root_cause(cleanup_exc))
    return RunFailed(message, row, interrupted)


class _NoTraceback(logging.Filter):
    """One line per record: the failure is reported on one ``error:`` line anyway.

    Beam logs a failing step's exception with its traceback (dozens of lines);
    that record is dropped, and any other record loses its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.name.startswith("apache_beam"):
            return False
        record.exc_info = record.exc_text = record.stack_info = None
        return True


def configure_logging(level: int) -> None:
    """Console logging at ``level``; tracebacks only at DEBUG."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if level > logging.DEBUG:
        handler.addFilter(_NoTraceback())
    logging.basicConfig(handlers=[handler])
    logging.getLogger().setLevel(level)
    # Beam's own INFO lines (type-hint notes, runner chatter) drown the summary.
    beam_level = logging.INFO if level <= logging.DEBUG else logging.WARNING
    logging.getLogger("apache_beam").setLevel(beam_level)


#: Set by SIGINT or SIGTERM: Beam re-raises the KeyboardInterrupt of a step as a
#: RuntimeError, so the failure path asks this instead of the exception's type.
STOPPED = threading.Event()
#: Set once the run acts on the stop (records it, cleans up): later signals are
#: let go so that work finishes. Until then every signal interrupts again: one
#: raised inside a finalizer or a library's ``except`` is lost, and the run must
#: not go on for hours deaf to the scheduler.
ACTING_ON_STOP = threading.Event()


@contextlib.contextmanager
def _stop_on_signals(after_term=None) -> Iterator[None]:
    """SIGTERM (what Cloud Run, Dataflow's launcher and Kubernetes send) stops the
    run as Ctrl-C does: promptly, recorded, staging dropped. The previous handlers
    come back afterwards (``main`` may be called in-process, as tests do);
    ``after_term``: SIGTERM's handler from then on instead (the command line's
    ``SIG_IGN``: a stop after the run ended changes nothing, and must not turn its
    exit status into "killed" while the interpreter shuts down)."""
    STOPPED.clear()
    ACTING_ON_STOP.clear()

    def interrupt(signum, frame):  # noqa: ARG001 - the signal module's signature
        if ACTING_ON_STOP.is_set():  # the stop is being recorded: let it finish
            return
        STOPPED.set()
        raise KeyboardInterrupt

    saved = {}
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        for signum in (signal.SIGTERM, signal.SIGINT):
            saved[signum] = signal.signal(signum, interrupt)
    try:
        yield
    finally:
        ACTING_ON_STOP.set()
        for signum, handler in saved.items():
            if signum == signal.SIGTERM and after_term is not None:
                handler = after_term
            signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None, now: datetime.datetime | None = None) -> int:
    """The command line: 0 done, 1 failed or not reconciled, 2 bad arguments, 130 stopped;
    a refusal (:mod:`pipelines.refusals`) exits with its own code, 1 or 2.

    ``now``: as for :func:`run` (tests act as of another day)."""
    with _stop_on_signals():
        return _main(list(sys.argv[1:] if argv is None else argv), now)


def _main(args: list[str], now: datetime.datetime | None) -> int:
    if args[:1] == ["backfill"]:
        from pipelines.cli import backfill

        return backfill.main(args[1:])
    if args[:1] == ["status"]:
        from pipelines.cli import status

        return status.main(args[1:])
    if args[:1] == ["schema"]:
        from pipelines.cli import schema_check

        return schema_check.main(args[1:])
    if any(a in HELP for a in args):
        print(sync_help())
        return 0
    if HELP_BEAM in args:
        print(beam_help())
        return 0
    try:
        level, args = pop_log_level(args)
        configure_logging(level)
        summary = run(args, now=now)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Refusal as exc:  # nothing was read or written; each kind has its exit code
        _LOG.debug("run refused", exc_info=exc)
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except RunFailed as exc:
        _LOG.debug("run failed", exc_info=exc)
        if exc.audit:
            for table in entries(exc.audit):
                state = "replaced" if table.replaced else "NOT replaced"
                detail = f" ({table.error})" if table.error else ""
                print(f"{table.table}: {state}{detail}", file=sys.stderr)
        if exc.interrupted:
            print(f"error: run {exc}", file=sys.stderr)
            return 130
        hint = reachability.failure_hint(exc)
        print(f"error: run failed: {exc}" + (f"; {hint}" if hint else ""), file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before the run had anything to record
        ACTING_ON_STOP.set()
        print("error: interrupted before the run started; nothing was written", file=sys.stderr)
        return 130
    except (reachability.Unreachable, UnknownVerdict, GoogleAPICallError, RetryError) as exc:
        # RetryError: a call that kept failing, e.g. while preparing tables.
        # UnknownVerdict: _sync_runs written by a newer sync; nothing planned from a misread.
        _LOG.debug("run failed", exc_info=exc)
        text = exc.message if isinstance(exc, GoogleAPICallError) else str(exc)
        plain = isinstance(exc, (reachability.Unreachable, UnknownVerdict))
        prefix = "" if plain else f"{type(exc).__name__}: "
        print(f"error: {prefix}{text}", file=sys.stderr)
        return 1
    print(summary.render())
    return 0 if summary.reconciles else 1


def cli() -> int:
    """The ``firestore-to-bq`` process: :func:`main`, then an exit no signal can stall.

    After a stop the run has recorded itself and given back what it took, yet
    the interpreter may never exit: a signal that lands while Beam starts its
    state-sampler thread (not a daemon) leaves that thread running for ever
    (Beam 2.77, seen by ``scripts/stop_trial.py``). So a stopped run's process
    ends with ``os._exit`` once its output is flushed. SIGTERM is ignored once
    the run is over (see :func:`_stop_on_signals`)."""
    with _stop_on_signals(after_term=signal.SIG_IGN):
        code = _main(list(sys.argv[1:]), None)
    if STOPPED.is_set():
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(cli())
