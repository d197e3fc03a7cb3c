"""``firestore-to-bq status`` after real syncs against the emulators (and its arguments, *unit*)."""

from __future__ import annotations

import datetime

import pytest

from pipelines.cli import status
from pipelines.convert.table_spec import load_specs
from pipelines.firestore_to_bq import main
from tests.support.sync_helpers import PROJECT

UTC = datetime.UTC
TABLES = sorted(load_specs())


def days_ago(n: int) -> str:
    return (datetime.datetime.now(UTC).date() - datetime.timedelta(days=n)).isoformat()


def table_line(out: str, table: str) -> list[str]:
    [line] = [x for x in out.splitlines() if x.startswith(f"{table} ")]
    return line.split()


def run_status(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["status", "--project", PROJECT, *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "d"], "error: the following arguments are required: --project"),
        (["--project", "p-1x"], "error: the following arguments are required: --dataset"),
        (["--project", "my-project", "--dataset", "d;x"], "error: --dataset 'd;x' is not a plain"),
        (["--project", "my-project", "--dataset", "d", "--max-lag-days", "2"], "did you mean"),
        (["--project", "my-project", "--datset", "d"], "--datset: did you mean --dataset?"),
        (["--project", "my-project", "--dataset", "d", "--max_lag_days", "-1"], "0 or more"),
    ],
)
def test_status_bad_arguments(args: list[str], message: str, capsys) -> None:
    assert main(["status", *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert err.startswith("error: ") and message in err


def test_dead_letter_count_uses_a_query_parameter() -> None:
    class Job:
        def result(self, **_):
            return [{"table_name": "tasks", "n": 2}]

    class Client:
        project = "my-project"

        def query(self, sql, job_config=None, **_):
            self.sql, self.config = sql, job_config
            return Job()

    client = Client()
    since = datetime.datetime(2026, 11, 18, tzinfo=UTC)
    assert status.dead_letter_counts(client, "analytics", since) == {"tasks": 2}
    assert "@since" in client.sql and "2026" not in client.sql
    [param] = client.config.query_parameters
    assert (param.name, param.value) == ("since", since)


def test_max_lag_minutes_must_be_positive(capsys) -> None:
    code = status.main(["--project", PROJECT, "--dataset", "d", "--max_lag_minutes", "0"])
    assert code == 2
    assert capsys.readouterr().err == "error: --max_lag_minutes must be 1 or more\n"


def test_a_lease_that_lapsed_without_being_given_back_names_its_dead_run() -> None:
    from pipelines.plan.windows import TableState
    from pipelines.state import leases

    now = datetime.datetime(2026, 12, 7, 12, tzinfo=UTC)
    lapsed = leases.Lease("tasks", "dead_run", now - datetime.timedelta(minutes=30),
                          now - datetime.timedelta(minutes=20))  # fmt: skip
    live = leases.Lease("tasks", "live_run", now, now + datetime.timedelta(minutes=10))
    yesterday = now.date() - datetime.timedelta(days=1)
    state = TableState("tasks", newest_day=yesterday)
    out = status.render("p", "d", [status.TableStatus(state, yesterday, 0, None, lapsed)],
                        7, (), now=now)  # fmt: skip
    assert "  lease: lapsed at 2026-12-07T11:40:00" in out and "run dead_run (it died" in out
    out = status.render("p", "d", [status.TableStatus(state, yesterday, 0, live)], 7, (), now=now)
    assert "  lease: held by run live_run since 2026-12-07T12:00:00Z" in out
    assert "(renewed while the run lives)" in out


def test_a_sync_runs_row_this_version_cannot_read_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A status a newer sync wrote is refused (``verdict.UnknownVerdict``), not guessed at."""
    from pipelines.services import bigquery as bq
    from pipelines.services import reachability
    from pipelines.state.verdict import run_status as decode

    monkeypatch.setattr(reachability, "check_bigquery", lambda *_: None)
    monkeypatch.setattr(bq, "make_client", lambda *_: object())
    monkeypatch.setattr(status, "collect", lambda *_: decode({"run_id": "r9", "status": "paused"}))
    code, out, err = run_status(capsys, "--dataset", "d")
    assert code == 1 and out == "" and len(err.splitlines()) == 1, err
    assert err.startswith("error: _sync_runs row of run 'r9': unknown status 'paused'")
