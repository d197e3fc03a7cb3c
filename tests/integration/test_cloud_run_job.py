"""The hourly intraday sync on Cloud Run Jobs: the deploy's dry run (job, grant, Scheduler
job), its refusals, its real run against a recording gcloud, and the job's own command
line run in process, in the launcher image's environment, against the emulators."""

from __future__ import annotations

import datetime

import pytest

from devtools import deploy_cloud_run_job as cloud_run
from pipelines import firestore_to_bq
from tests.support.documents import task
from tests.support.sync_helpers import PROJECT, seed, unique_dataset, verdicts

BASE = [
    "--project", "my-proj", "--region", "europe-west1", "--dataset", "app_analytics",
    "--bq_location", "EU", "--tag", "v1",
]  # fmt: skip
IMAGE = "europe-west1-docker.pkg.dev/my-proj/firestore-to-bq/firestore-to-bq:v1"
PIPELINE_SA = "firestore-to-bq@my-proj.iam.gserviceaccount.com"
SCHEDULER_SA = "firestore-to-bq-scheduler@my-proj.iam.gserviceaccount.com"
RUN_URL = (
    "https://run.googleapis.com/v2/projects/my-proj/locations/europe-west1/jobs/firestore-to-bq:run"
)
JOB_ARGS = (
    "-m,pipelines.firestore_to_bq,--project,my-proj,--dataset,app_analytics,--intraday,"
    "--bq_location,EU,--runner,DirectRunner,--direct_running_mode,in_memory"
)
DESCRIPTION = "Hourly intraday Firestore to BigQuery sync into app_analytics on Cloud Run"


def scheduler_command(verb: str) -> str:
    headers = "--headers" if verb == "create" else "--update-headers"
    return (
        f"gcloud scheduler jobs {verb} http firestore-to-bq-hourly --project my-proj "
        "--location europe-west1 --schedule '7 * * * *' --time-zone Etc/UTC "
        f"--uri {RUN_URL} --http-method POST {headers} Content-Type=application/json "
        "--message-body-from-file run-body-hourly.json "
        f"--oauth-service-account-email {SCHEDULER_SA} "
        "--oauth-token-scope https://www.googleapis.com/auth/cloud-platform "
        f"--description '{DESCRIPTION}'"
    )


EXPECTED_COMMANDS = [
    "gcloud run jobs deploy firestore-to-bq --project my-proj --region europe-west1 "
    f"--image {IMAGE} --service-account {PIPELINE_SA} --memory 2Gi --cpu 1 "
    f"--task-timeout 50m --max-retries 0 --tasks 1 --command python --args={JOB_ARGS}",
    "gcloud run jobs add-iam-policy-binding firestore-to-bq --project my-proj "
    f"--region europe-west1 --member=serviceAccount:{SCHEDULER_SA} --role=roles/run.invoker",
    "gcloud scheduler jobs describe firestore-to-bq-hourly --project my-proj "
    "--location europe-west1",
    scheduler_command("create"),
    scheduler_command("update"),
]


UTC = datetime.UTC
#: Noon of the real tomorrow, so "today" cannot turn over mid-test (as in test_intraday).
NOW = datetime.datetime.combine(datetime.datetime.now(UTC).date(), datetime.time(12), UTC)
NOW += datetime.timedelta(days=1)


@pytest.mark.integration
def test_the_jobs_command_line_runs_in_the_launcher_image_and_waits(
    firestore_db, bq_client, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Cloud Run Job's own arguments, with the launcher image's environment set: the
    run reads, writes, records its verdict and prints its summary before it exits."""
    today, yesterday = NOW.date(), NOW.date() - datetime.timedelta(days=1)
    seed(firestore_db, {"users/cr/tasks/old": task(yesterday.isoformat(), hour=8)})
    dataset = unique_dataset("cloud_run")
    nightly = ["--project", PROJECT, "--dataset", dataset, "--collections", "tasks"]
    assert firestore_to_bq.main([*nightly, "--run_id", "nightly1"], now=NOW) == 0
    seed(firestore_db, {"users/cr/tasks/new": task(today.isoformat(), hour=10)})

    args = cloud_run.parse_args(
        ["--project", PROJECT, "--region", "europe-west1", "--dataset", dataset,
         "--collections", "tasks", "--tag", "v1"]
    )  # fmt: skip
    argv = cloud_run.pipeline_args(args)[2:]  # after "-m pipelines.firestore_to_bq"
    monkeypatch.setenv(firestore_to_bq.FLEX_TEMPLATE_ENV, "/template/pipelines/firestore_to_bq.py")
    capsys.readouterr()
    assert firestore_to_bq.main([*argv, "--run_id", "hourly1"], now=NOW) == 0

    out = capsys.readouterr().out
    assert "run hourly1: intraday" in out and "submitted" not in out
    [row] = [r for r in verdicts(bq_client, dataset) if r["run_id"] == "hourly1"]
    assert row["status"] == "succeeded"
    rows = bq_client.query(f"SELECT task_id FROM `{PROJECT}.{dataset}.tasks`").result()
    assert {r["task_id"] for r in rows} == {"old", "new"}
