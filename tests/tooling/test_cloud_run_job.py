"""The hourly intraday sync on Cloud Run Jobs: the deploy's dry run (job, grant, Scheduler
job), its refusals, its real run against a recording gcloud, and the job's own command
line run in process, in the launcher image's environment, against the emulators."""

from __future__ import annotations

import datetime
import json
import shlex
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from devtools import REPO_ROOT
from devtools import deploy_cloud_run_job as cloud_run
from pipelines import firestore_to_bq
from pipelines.cli.options import resolve
from tests.support import example_app
from tests.support.fake_gcloud import calls

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


def test_dry_run_prints_the_job_the_grant_and_the_scheduler_job(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cloud_run.main([*BASE, "--dry_run"]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("gcloud ")] == EXPECTED_COMMANDS
    body = out.split("# Request body (run-body-hourly.json):\n", 1)[1].split("# Look")[0]
    # The job carries its arguments: the scheduler sends no overrides, so run.invoker suffices.
    assert json.loads(body) == {}
    assert out.splitlines()[1] == (
        "# Cloud Run Job firestore-to-bq: the intraday sync in process (DirectRunner), "
        f"1 vCPU, 2Gi, task timeout 50m, as {PIPELINE_SA}"
    )


def test_the_dry_run_names_the_schema_folder_the_image_carries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--schemas_dir`` names the folder (``F2BQ_SCHEMAS_DIR`` by default, as for every
    command) and ``--collections`` is checked against its tables."""
    folder = tmp_path / "app_schemas"
    folder.mkdir()
    (folder / "tasks.json").write_text((example_app.SCHEMAS / "tasks.json").read_text())
    assert cloud_run.main([*BASE, "--schemas_dir", str(folder), "--dry_run"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"# Cloud Run Job firestore-to-bq runs the table schemas baked into the image: {folder}/ "
        f"when built with scripts/build_template.py --schemas_dir {folder}; a schema change "
        "means rebuilding the image, then deploying the job again"
    )
    argv = [*BASE, "--schemas_dir", str(folder), "--collections", "routines", "--dry_run"]
    assert cloud_run.main(argv) == 2
    assert "unknown collection 'routines'" in capsys.readouterr().err
    assert cloud_run.main([*BASE, "--dry_run"]) == 0  # the session's: the example app's
    shown = example_app.SCHEMAS.relative_to(REPO_ROOT)  # inside the checkout: relative
    assert f"image: {shown}/ when" in capsys.readouterr().out.splitlines()[0]


def test_the_job_runs_the_intraday_sync_in_process_with_leases_shorter_than_an_hour() -> None:
    args = cloud_run.parse_args(BASE)
    argv = cloud_run.pipeline_args(args)
    assert argv[:2] == ["-m", "pipelines.firestore_to_bq"]
    assert "--intraday" in argv
    assert argv[argv.index("--runner") + 1] == "DirectRunner"
    # The pipeline takes every argument (it refuses unknown ones) and runs it in process.
    options = firestore_to_bq.parse_options(argv[2:])
    assert firestore_to_bq.runs_in_process(options)
    # It renews its leases while it lives; a killed run's lapse well before the next.
    lease = resolve(options).lease_minutes
    assert lease < 60 and lease < args.task_timeout_minutes, "a killed run's lease lapses first"


def test_options_reach_the_job(capsys: pytest.CaptureFixture[str]) -> None:
    extra = [
        "--collections", "tasks, user_interactions", "--verify_days", "3",
        "--memory", "4Gi", "--cpu", "2", "--task_timeout_minutes", "30",
        "--name", "f2bq-eu", "--schedule", "*/30 * * * *",
        "--service_account", "sync@my-proj.iam.gserviceaccount.com",
        "--image", "europe-docker.pkg.dev/other/repo/img@sha256:abc",
    ]  # fmt: skip
    assert cloud_run.main([*BASE[:-2], *extra, "--dry_run"]) == 0
    deploy = shlex.split(capsys.readouterr().out.splitlines()[2])
    flags = dict(zip(deploy[5::2], deploy[6::2], strict=False))
    assert deploy[4] == "f2bq-eu"
    assert flags["--memory"] == "4Gi" and flags["--cpu"] == "2"
    assert flags["--task-timeout"] == "30m"
    assert flags["--service-account"] == "sync@my-proj.iam.gserviceaccount.com"
    assert flags["--image"] == "europe-docker.pkg.dev/other/repo/img@sha256:abc"
    # A value with a comma: gcloud's other-delimiter escape keeps it one argument.
    args = deploy[-1].removeprefix("--args=")
    assert args.startswith("^;^")
    assert args[3:].split(";")[-6:] == [
        "--direct_running_mode", "in_memory",
        "--collections", "tasks,user_interactions", "--verify_days", "3",
    ]  # fmt: skip
    job = cloud_run.hourly_job(cloud_run.parse_args([*BASE[:-2], *extra]))
    assert (job.name, job.schedule) == ("f2bq-eu-hourly", "*/30 * * * *")
    assert job.uri.endswith("/locations/europe-west1/jobs/f2bq-eu:run")


@pytest.mark.parametrize(
    "extra",
    [
        ["--dataset", "app-analytics"],
        ["--collections", "nope"],
        ["--region", "Europe West"],
        ["--name", "Bad_Name"],
        ["--cpu", "3"],
        ["--memory", "2G"],
        ["--memory", "8Gi"],
        ["--task_timeout_minutes", "0"],
        ["--verify_days", "-1"],
        ["--schedule", " "],
        ["--image", "x y/z"],
        ["--image", "a/b:c"],  # with --tag
        ["--oauth-service-account-email", "someone@example.com"],
    ],
)
def test_bad_arguments_are_refused_in_one_line(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cloud_run.main([*BASE, *extra, "--dry_run"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and len(captured.err.splitlines()) == 1


@pytest.mark.parametrize(("state", "verb"), [("missing", "create"), ("exists", "update")])
def test_real_run_deploys_grants_then_schedules(
    fake_gcloud: Path,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
    state: str,
    verb: str,
) -> None:
    monkeypatch.setenv("FAKE_JOB", state)
    assert cloud_run.main(BASE) == 0
    made = calls(fake_gcloud)
    assert [c["args"][:5] for c in made] == [
        ["run", "jobs", "deploy", "firestore-to-bq", "--project"],
        ["run", "jobs", "add-iam-policy-binding", "firestore-to-bq", "--project"],
        ["scheduler", "jobs", "describe", "firestore-to-bq-hourly", "--project"],
        ["scheduler", "jobs", verb, "http", "firestore-to-bq-hourly"],
    ]
    assert made[3]["body"] == {}
    assert "gcloud " + shlex.join(made[0]["args"]) == EXPECTED_COMMANDS[0]


def test_dry_run_runs_nothing(fake_gcloud: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("FAKE_JOB", "missing")
    assert cloud_run.main([*BASE, "--dry_run"]) == 0
    assert calls(fake_gcloud) == []


@pytest.mark.parametrize(
    ("env", "runner", "hands_over"),
    [
        (True, "DataflowRunner", True),  # the Flex Template launch: submit and exit
        (True, "DirectRunner", False),  # the same image on Cloud Run: run and wait
        (True, None, False),
        (False, "DataflowRunner", False),  # a launch from a checkout waits for its job
    ],
)
def test_only_a_flex_template_launch_hands_the_job_over(
    monkeypatch: pytest.MonkeyPatch, env: bool, runner: str | None, hands_over: bool
) -> None:
    if env:
        monkeypatch.setenv(firestore_to_bq.FLEX_TEMPLATE_ENV, "/template/pipelines/x.py")
    else:
        monkeypatch.delenv(firestore_to_bq.FLEX_TEMPLATE_ENV, raising=False)
    options = PipelineOptions([f"--runner={runner}"] if runner else [])
    assert firestore_to_bq.hands_over(options) is hands_over


UTC = datetime.UTC
#: Noon of the real tomorrow, so "today" cannot turn over mid-test (as in test_intraday).
NOW = datetime.datetime.combine(datetime.datetime.now(UTC).date(), datetime.time(12), UTC)
NOW += datetime.timedelta(days=1)
