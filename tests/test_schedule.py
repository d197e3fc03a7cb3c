"""The nightly Cloud Scheduler job: its launch request and its create-or-update logic."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.script_loader import load_script

schedule = load_script("schedule_nightly")
BASE = [
    "--project",
    "my-proj",
    "--region",
    "europe-west1",
    "--dataset",
    "app_analytics",
    "--bucket",
    "my-proj-dataflow",
]


def test_launch_body_defaults() -> None:
    args = schedule.parse_args(BASE)

    assert schedule.launch_body(args) == {
        "launchParameter": {
            "jobName": "firestore-to-bq-nightly",
            "containerSpecGcsPath": "gs://my-proj-dataflow/templates/firestore-to-bq.json",
            "parameters": {
                "project": "my-proj",
                "dataset": "app_analytics",
                "lookback_days": "0",
                "bq_location": "US",
            },
            "environment": {
                "serviceAccountEmail": "firestore-to-bq@my-proj.iam.gserviceaccount.com",
                "maxWorkers": 10,
                "tempLocation": "gs://my-proj-dataflow/temp",
                "stagingLocation": "gs://my-proj-dataflow/staging",
            },
        }
    }


def test_launch_body_with_options() -> None:
    args = schedule.parse_args(
        [
            *BASE,
            "--collections",
            "tasks, user_interactions",
            "--lookback_days",
            "3",
            "--bq_location",
            "EU",
            "--max_workers",
            "4",
            "--machine_type",
            "n2-standard-2",
            "--service_account",
            "sync@my-proj.iam.gserviceaccount.com",
        ]
    )

    launch = schedule.launch_body(args)["launchParameter"]

    assert launch["parameters"] == {
        "project": "my-proj",
        "dataset": "app_analytics",
        "collections": "tasks,user_interactions",
        "lookback_days": "3",
        "bq_location": "EU",
    }
    assert launch["environment"] == {
        "serviceAccountEmail": "sync@my-proj.iam.gserviceaccount.com",
        "maxWorkers": 4,
        "tempLocation": "gs://my-proj-dataflow/temp",
        "stagingLocation": "gs://my-proj-dataflow/staging",
        "machineType": "n2-standard-2",
    }


def test_body_has_no_date_so_the_pipeline_syncs_yesterday() -> None:
    params = schedule.launch_body(schedule.parse_args(BASE))["launchParameter"]["parameters"]
    assert not {"date", "start_date", "end_date"} & set(params)
    assert all(isinstance(v, str) for v in params.values()), "launch parameters are strings"


@pytest.mark.parametrize(
    "extra",
    [
        ["--dataset", "app-analytics"],
        ["--collections", "nope"],
        ["--lookback_days", "-1"],
        ["--region", "Europe West"],
        ["--oauth-service-account-email", "someone@example.com"],
    ],
)
def test_bad_arguments_are_refused(extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert schedule.main([*BASE, *extra, "--dry_run"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_dry_run_prints_body_and_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert schedule.main([*BASE, "--dry_run"]) == 0
    out = capsys.readouterr().out
    body_text = out.split("# Look the job up:")[0].split("\n", 1)[1]
    assert json.loads(body_text) == schedule.launch_body(schedule.parse_args(BASE))
    lines = [line for line in out.splitlines() if line.startswith("gcloud ")]
    url = (
        "https://dataflow.googleapis.com/v1b3/projects/my-proj/locations/europe-west1"
        "/flexTemplates:launch"
    )
    assert lines[0] == (
        "gcloud scheduler jobs describe firestore-to-bq-nightly --project my-proj "
        "--location europe-west1"
    )
    common = (
        "firestore-to-bq-nightly --project my-proj --location europe-west1 "
        f"--schedule '0 3 * * *' --time-zone Etc/UTC --uri {url} --http-method POST "
    )
    auth = (
        "--message-body-from-file launch-body.json "
        "--oauth-service-account-email firestore-to-bq-scheduler@my-proj.iam.gserviceaccount.com "
        "--oauth-token-scope https://www.googleapis.com/auth/cloud-platform "
        "--description 'Nightly Firestore to BigQuery sync into app_analytics'"
    )
    assert lines[1] == (
        f"gcloud scheduler jobs create http {common}--headers Content-Type=application/json {auth}"
    )
    assert lines[2] == (
        f"gcloud scheduler jobs update http {common}"
        f"--update-headers Content-Type=application/json {auth}"
    )


FAKE_GCLOUD = """#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
record = {"args": args}
if "--message-body-from-file" in args:
    record["body"] = json.load(open(args[args.index("--message-body-from-file") + 1]))
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
if args[:3] == ["scheduler", "jobs", "describe"]:
    state = os.environ["FAKE_JOB"]
    if state == "missing":
        sys.stderr.write("ERROR: (gcloud.scheduler.jobs.describe) NOT_FOUND: Job not found.\\n")
        sys.exit(1)
    if state == "denied":
        sys.stderr.write("ERROR: PERMISSION_DENIED: no\\n")
        sys.exit(1)
sys.exit(0)
"""


@pytest.fixture
def fake_gcloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``gcloud`` on PATH that records its calls and plays an existing or missing job."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(FAKE_GCLOUD)
    gcloud.chmod(gcloud.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    return log


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.parametrize(("state", "verb"), [("missing", "create"), ("exists", "update")])
def test_creates_or_updates(
    fake_gcloud: Path, monkeypatch: pytest.MonkeyPatch, state: str, verb: str
) -> None:
    monkeypatch.setenv("FAKE_JOB", state)

    assert schedule.main(BASE) == 0

    made = calls(fake_gcloud)
    assert [c["args"][:4] for c in made] == [
        ["scheduler", "jobs", "describe", "firestore-to-bq-nightly"],
        ["scheduler", "jobs", verb, "http"],
    ]
    assert made[1]["body"] == schedule.launch_body(schedule.parse_args(BASE))


def test_lookup_error_is_not_taken_for_a_missing_job(
    fake_gcloud: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_JOB", "denied")

    assert schedule.main(BASE) == 1
    assert len(calls(fake_gcloud)) == 1


def test_dry_run_runs_nothing(fake_gcloud: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_JOB", "missing")
    assert schedule.main([*BASE, "--dry_run"]) == 0
    assert calls(fake_gcloud) == []
