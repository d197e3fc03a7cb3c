"""The one shape of every scenario, and the one driver that runs any of them into the report.

A scenario measures one or more *cases* (a history length, say), each in the
same steps: ``seed`` writes what the measured runs start from (documents, and
any untimed run that leaves BigQuery as a previous night would); ``run`` runs
the sync as measured; ``verify`` checks what the runs read and wrote against
what the benchmark knows it wrote and sets the case's ``ok``; then ``record``
turns the cases into the scenario's part of the JSON report. :func:`drive` is
the only loop, so what every scenario needs is done once, the same way: a
fresh Firestore and fresh datasets for each case, the datasets dropped after
it unless ``--keep-data``, and a case whose run failed (:class:`Stop`)
reported as such without ending the others. :func:`report` adds what every
report holds: the command, the machine, a run's start-up cost and validity.
"""

from __future__ import annotations

import argparse
import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from devtools.bench import log, sync_run
from pipelines.convert.table_spec import TableSpec

#: The scenarios each ``--scenario`` runs, in order (each a module of this package).
SCENARIOS = {
    "backfill": ("backfill",), "nightly": ("nightly",), "intraday": ("intraday",),
    "onboarding": ("onboarding",), "all": ("backfill", "nightly"),
}  # fmt: skip


class Stop(Exception):
    """The case cannot go on (a run failed): reported not ok, with this message as its
    ``error`` if it has one."""


@dataclass
class Case:
    """One measurement: its size (days of history, or documents), the datasets its runs
    write, and the JSON it reports. Scenarios add what their steps hand each other."""

    size: int
    datasets: tuple[str, ...] = ()
    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class Bench:
    """What every step works with: the options, the emulators and clients on them, the
    table specs, and where run logs go."""

    args: argparse.Namespace
    emu: Any
    log_dir: Path
    db: Any
    client: Any
    specs: list[TableSpec]
    env: dict[str, str]

    @classmethod
    def open(cls, args: argparse.Namespace, emu: Any, log_dir: Path) -> Bench:
        from google.cloud import firestore

        from pipelines.convert.table_spec import load_specs
        from pipelines.services import bigquery as bq

        return cls(args, emu, log_dir, firestore.Client(project=emu.project),
                   bq.make_client(emu.project), list(load_specs().values()),
                   {**os.environ, **emu.env()})  # fmt: skip

    @property
    def project(self) -> str:
        return self.emu.project

    def sync(self, name: str, *args: str, dataset: str | None = None, **when: Any) -> Any:
        """One run of the sync as a subprocess (:mod:`.sync_run`; ``when``: its ``now``
        or ``clock_skew``), logged if it failed."""
        into = ["--dataset", dataset] if dataset else []
        done = sync_run.run(["--project", self.project, *into, *args], self.env, self.log_dir,
                            name, **when)  # fmt: skip
        if not (done.ok and done.run_id):
            log(f"{name} failed (exit {done.exit_code}): {done.error}")
        return done

    def audit(self, dataset: str, run_id: str) -> dict[str, Any]:
        return sync_run.audit_entries(self.client, dataset, run_id)

    def drop(self, *datasets: str) -> None:
        for dataset in datasets:
            self.client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)


class Scenario(Protocol):
    """seed → run → verify for each case, then record (see the module)."""

    #: Where ``record``'s part goes in the report; None: its top level (the backfill's).
    key: ClassVar[str | None]
    #: Each case starts from an empty Firestore.
    fresh: ClassVar[bool] = True

    def cases(self, bench: Bench) -> list[Any]: ...
    def seed(self, bench: Bench, case: Any) -> None: ...
    def run(self, bench: Bench, case: Any) -> None: ...
    def verify(self, bench: Bench, case: Any) -> None: ...
    def record(self, bench: Bench, cases: list[Any]) -> dict[str, Any]: ...


def drive(scenario: Scenario, bench: Bench) -> dict[str, Any]:
    """Every case of ``scenario``, each on its own, then its part of the report."""
    cases = scenario.cases(bench)
    for case in cases:
        bench.drop(*case.datasets)
        if scenario.fresh:
            bench.emu.reset_firestore()
        try:
            for step in (scenario.seed, scenario.run, scenario.verify):
                step(bench, case)
        except Stop as stop:
            case.result.update(ok=False, **({"error": str(stop)} if str(stop) else {}))
        finally:
            if not bench.args.keep_data:
                bench.drop(*case.datasets)
    return scenario.record(bench, cases)


def report(args: argparse.Namespace, emu: Any, log_dir: Path) -> dict[str, Any]:
    """The scenarios ``--scenario`` names, one after the other, in one report."""
    bench = Bench.open(args, emu, log_dir)
    out: dict[str, Any] = {
        "command": args.command,
        "cwd": str(Path.cwd()),
        "machine": sync_run.machine(),
        "python_startup_seconds": round(sync_run.python_startup_seconds(bench.env), 3),
        "valid": True,
        "failed_configs": [],
    }
    for name in SCENARIOS[args.scenario]:
        scenario: Scenario = importlib.import_module(f"devtools.bench.{name}").SCENARIO
        part = drive(scenario, bench)
        if scenario.key is None:  # the backfill: its figures are the report's own
            out.update(part)
        else:
            out[scenario.key] = part
            out["valid"] = out["valid"] and part["ok"]
    out["scenario"] = args.scenario
    return out


def within(value: float | None, target: float) -> bool:
    """Whether a figure meets its target (a missing figure does not)."""
    return value is not None and value <= target


def ratio(part: float | None, whole: float | None, digits: int = 4) -> float | None:
    """``part / whole`` rounded, or None when there is nothing to divide."""
    return None if part is None or not whole else round(part / whole, digits)
