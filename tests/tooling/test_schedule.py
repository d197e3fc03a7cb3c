"""The Cloud Scheduler jobs, nightly incremental, weekly reconcile and monthly full: requests,
create or update."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from devtools import REPO_ROOT
from devtools import schedule_nightly as schedule
from tests.support.fake_gcloud import calls

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


def job(args: argparse.Namespace, suffix: str) -> Any:
    """The scheduled job with this suffix (``nightly``, ``weekly-reconcile``, ``monthly-full``)."""
    return next(j for j in schedule.jobs(args) if j.suffix == suffix)


ENVIRONMENT = {
    "serviceAccountEmail": "firestore-to-bq@my-proj.iam.gserviceaccount.com",
    "maxWorkers": 10,
    "tempLocation": "gs://my-proj-dataflow/temp",
    "stagingLocation": "gs://my-proj-dataflow/staging",
}


def test_launch_body_defaults() -> None:
    args = schedule.parse_args(BASE)

    assert schedule.launch_body(args, job(args, "nightly")) == {
        "launchParameter": {
            "jobName": "firestore-to-bq",
            "containerSpecGcsPath": "gs://my-proj-dataflow/templates/firestore-to-bq.json",
            "parameters": {
                "project": "my-proj",
                "dataset": "app_analytics",
                "mode": "incremental",
                "lookback_days": "0",
                "bq_location": "US",
            },
            "environment": ENVIRONMENT,
        }
    }
    weekly = schedule.launch_body(args, job(args, "weekly-reconcile"))["launchParameter"]
    assert weekly["parameters"] == {
        "project": "my-proj",
        "dataset": "app_analytics",
        "mode": "reconcile",
        "lookback_days": "0",
        "bq_location": "US",
    }
    assert schedule.launch_body(args, job(args, "monthly-full")) == {
        "launchParameter": {
            "jobName": "firestore-to-bq",
            "containerSpecGcsPath": "gs://my-proj-dataflow/templates/firestore-to-bq.json",
            "parameters": {
                "project": "my-proj",
                "dataset": "app_analytics",
                "mode": "full",
                "bq_location": "US",
            },
            "environment": ENVIRONMENT,
        }
    }


def test_two_jobs_with_their_own_names_schedules_and_modes() -> None:
    args = schedule.parse_args(BASE)
    assert [(j.name(args), j.schedule, j.mode) for j in schedule.jobs(args)] == [
        ("firestore-to-bq-nightly", "0 3 * * *", "incremental"),
        ("firestore-to-bq-weekly-reconcile", "0 4 * * 0", "reconcile"),
        ("firestore-to-bq-monthly-full", "0 5 1 * *", "full"),
    ]
    args = schedule.parse_args(
        [*BASE, "--name", "f2bq-eu", "--schedule", "30 2 * * *", "--weekly_schedule", "0 5 * * 6"]
    )
    assert [(j.name(args), j.schedule) for j in schedule.jobs(args)] == [
        ("f2bq-eu-nightly", "30 2 * * *"),
        ("f2bq-eu-weekly-reconcile", "0 5 * * 6"),
        ("f2bq-eu-monthly-full", "0 5 1 * *"),
    ]
    bodies = [schedule.launch_body(args, j)["launchParameter"] for j in schedule.jobs(args)]
    # One Dataflow job name: Dataflow refuses a second active job of that name,
    # so the weekly full run never overlaps a nightly that is still running.
    assert [b["jobName"] for b in bodies] == ["f2bq-eu"] * 3


def test_launch_body_with_options() -> None:
    args = schedule.parse_args(
        [
            *BASE,
            "--collections",
            "tasks, user_interactions",
            "--lookback_days",
            "3",
            "--max_catchup_days",
            "14",
            "--verify_days",
            "60",
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

    nightly = schedule.launch_body(args, job(args, "nightly"))["launchParameter"]
    weekly = schedule.launch_body(args, job(args, "weekly-reconcile"))["launchParameter"]
    monthly = schedule.launch_body(args, job(args, "monthly-full"))["launchParameter"]

    assert nightly["parameters"] == {
        "project": "my-proj",
        "dataset": "app_analytics",
        "mode": "incremental",
        "collections": "tasks,user_interactions",
        "lookback_days": "3",
        "max_catchup_days": "14",
        "verify_days": "60",
        "bq_location": "EU",
    }
    assert weekly["parameters"] == {**nightly["parameters"], "mode": "reconcile"}
    assert monthly["parameters"] == {
        "project": "my-proj",
        "dataset": "app_analytics",
        "mode": "full",
        "collections": "tasks,user_interactions",
        "bq_location": "EU",
    }
    for launch in (nightly, weekly, monthly):
        assert launch["environment"] == {
            "serviceAccountEmail": "sync@my-proj.iam.gserviceaccount.com",
            "maxWorkers": 4,
            "tempLocation": "gs://my-proj-dataflow/temp",
            "stagingLocation": "gs://my-proj-dataflow/staging",
            "machineType": "n2-standard-2",
        }


def test_nightly_can_read_whole_collections_too() -> None:
    """For apps that want no collection-group indexes (see docs/deploy.md)."""
    args = schedule.parse_args([*BASE, "--nightly_mode", "full"])
    nightly = job(args, "nightly")
    assert nightly.mode == "full"
    assert nightly.description == "Nightly full Firestore to BigQuery sync into app_analytics"
    params = schedule.launch_body(args, nightly)["launchParameter"]["parameters"]
    assert params["mode"] == "full" and "lookback_days" not in params


def test_bodies_have_no_date_so_the_pipeline_picks_the_window() -> None:
    args = schedule.parse_args(BASE)
    for each in schedule.jobs(args):
        params = schedule.launch_body(args, each)["launchParameter"]["parameters"]
        assert not {"date", "start_date", "end_date"} & set(params)
        assert all(isinstance(v, str) for v in params.values()), "launch parameters are strings"


def test_parameters_are_template_parameters() -> None:
    """Dataflow refuses a launch whose parameter the template does not declare."""
    metadata = json.loads((REPO_ROOT / "deploy" / "metadata.json").read_text(encoding="utf-8"))
    declared = {p["name"]: p for p in metadata["parameters"]} | {"project": {}}
    args = schedule.parse_args([*BASE, "--max_catchup_days", "3", "--verify_days", "9"])
    for each in schedule.jobs(args):
        params = schedule.launch_body(args, each)["launchParameter"]["parameters"]
        assert set(params) <= set(declared), each.suffix
        for name, value in params.items():
            assert all(re.search(r, value) for r in declared[name].get("regexes", [])), name


@pytest.mark.parametrize(
    "extra",
    [
        ["--dataset", "app-analytics"],
        ["--collections", "nope"],
        ["--lookback_days", "-1"],
        ["--max_catchup_days", "0"],
        ["--verify_days", "-1"],
        ["--region", "Europe West"],
        ["--oauth-service-account-email", "someone@example.com"],
        ["--name", "Bad_Name"],
        ["--weekly_schedule", "0 3 * * *"],
        ["--nightly_mode", "fast"],
    ],
)
def test_bad_arguments_are_refused(extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert schedule.main([*BASE, *extra, "--dry_run"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


URL = (
    "https://dataflow.googleapis.com/v1b3/projects/my-proj/locations/europe-west1"
    "/flexTemplates:launch"
)


def expected_commands(name: str, schedule_: str, description: str) -> list[str]:
    common = (
        f"{name} --project my-proj --location europe-west1 "
        f"--schedule '{schedule_}' --time-zone Etc/UTC --uri {URL} --http-method POST "
    )
    suffix = name.removeprefix("firestore-to-bq-")
    auth = (
        f"--message-body-from-file launch-body-{suffix}.json "
        "--oauth-service-account-email firestore-to-bq-scheduler@my-proj.iam.gserviceaccount.com "
        "--oauth-token-scope https://www.googleapis.com/auth/cloud-platform "
        "--max-retry-attempts 4 --min-backoff 30m --max-backoff 1h "
        f"--description '{description}'"
    )
    return [
        f"gcloud scheduler jobs describe {name} --project my-proj --location europe-west1",
        f"gcloud scheduler jobs create http {common}--headers Content-Type=application/json {auth}",
        f"gcloud scheduler jobs update http {common}"
        f"--update-headers Content-Type=application/json {auth}",
    ]


def test_dry_run_prints_bodies_and_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert schedule.main([*BASE, "--dry_run"]) == 0
    out = capsys.readouterr().out
    args = schedule.parse_args(BASE)

    nightly_text, rest = out.split("# Weekly ")
    weekly_text, monthly_text = rest.split("# Monthly ")
    texts = (nightly_text, weekly_text, monthly_text)
    for text, each in zip(texts, schedule.jobs(args), strict=True):
        body_text = text.split("# Look the job up:")[0].split(".json):\n", 1)[1]
        assert json.loads(body_text) == schedule.launch_body(args, each)
    lines = [line for line in out.splitlines() if line.startswith("gcloud ")]
    assert lines == [
        *expected_commands(
            "firestore-to-bq-nightly",
            "0 3 * * *",
            "Nightly incremental Firestore to BigQuery sync into app_analytics",
        ),
        *expected_commands(
            "firestore-to-bq-weekly-reconcile",
            "0 4 * * 0",
            "Weekly Firestore to BigQuery reconcile of app_analytics (counts per day)",
        ),
        *expected_commands(
            "firestore-to-bq-monthly-full",
            "0 5 1 * *",
            "Monthly full Firestore to BigQuery rebuild of app_analytics",
        ),
    ]
    assert out.splitlines()[-1] == "# " + schedule.legacy_note(args)
    assert "gcloud scheduler jobs delete firestore-to-bq-weekly-full" in out


@pytest.mark.parametrize(("state", "verb"), [("missing", "create"), ("exists", "update")])
def test_creates_or_updates(
    fake_gcloud: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    state: str,
    verb: str,
) -> None:
    monkeypatch.setenv("FAKE_JOB", state)

    assert schedule.main(BASE) == 0

    made = calls(fake_gcloud)
    names = ["nightly", "weekly-reconcile", "monthly-full"]
    assert [c["args"][:5] for c in made] == [
        *(
            step
            for name in names
            for step in (
                ["scheduler", "jobs", "describe", f"firestore-to-bq-{name}", "--project"],
                ["scheduler", "jobs", verb, "http", f"firestore-to-bq-{name}"],
            )
        ),
        ["scheduler", "jobs", "describe", "firestore-to-bq-weekly-full", "--project"],
    ]
    args = schedule.parse_args(BASE)
    assert [made[1]["body"], made[3]["body"], made[5]["body"]] == [
        schedule.launch_body(args, each) for each in schedule.jobs(args)
    ]
    # The weekly full job of an earlier version is named, never deleted here.
    legacy = schedule.legacy_note(args) in capsys.readouterr().out
    assert legacy == (state == "exists")


def test_lookup_error_is_not_taken_for_a_missing_job(
    fake_gcloud: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_JOB", "denied")

    assert schedule.main(BASE) == 1
    assert len(calls(fake_gcloud)) == 1, "the weekly job is not tried after the nightly failed"


def test_the_dry_run_names_the_schema_folder_the_template_carries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--schemas_dir`` names the folder the template's image was built with, and
    ``--collections`` is checked against its tables."""
    from tests.support import example_app

    folder = tmp_path / "app_schemas"
    folder.mkdir()
    (folder / "tasks.json").write_text((example_app.SCHEMAS / "tasks.json").read_text())
    assert schedule.main([*BASE, "--schemas_dir", str(folder), "--dry_run"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"# The Flex Template runs the table schemas baked into the image: {folder}/ when "
        f"built with scripts/build_template.py --schemas_dir {folder}; a schema change means "
        "rebuilding the image"
    )
    argv = [*BASE, "--schemas_dir", str(folder), "--collections", "projects", "--dry_run"]
    assert schedule.main(argv) == 2
    assert "unknown collection 'projects'" in capsys.readouterr().err
    assert schedule.main([*BASE, "--schemas_dir", str(tmp_path / "none"), "--dry_run"]) == 2
    assert capsys.readouterr().err.startswith("error: --schemas_dir: cannot read")


def test_dry_run_runs_nothing(fake_gcloud: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_JOB", "missing")
    assert schedule.main([*BASE, "--dry_run"]) == 0
    assert calls(fake_gcloud) == []
