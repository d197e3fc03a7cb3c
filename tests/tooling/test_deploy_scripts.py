"""Dry runs of the deployment scripts: the exact IAM grants, and the template build.

The template build reads its schema folder's default, the checkout's ``schemas/``
(``F2BQ_SCHEMAS_DIR``, which the test session points at the example app's copy, is
unset for these tests): only to check it, so any valid folder there passes; a custom
folder is a copy of one example schema in a temporary checkout.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from devtools import REPO_ROOT
from devtools import build_template as build
from pipelines.convert.table_spec import SCHEMAS_DIR_ENV
from tests.support import example_app

SCRIPTS = REPO_ROOT / "scripts"
SA_SCRIPT = SCRIPTS / "create_service_accounts.sh"
PIPELINE_SA = "serviceAccount:firestore-to-bq@my-proj.iam.gserviceaccount.com"
SCHEDULER_SA = "serviceAccount:firestore-to-bq-scheduler@my-proj.iam.gserviceaccount.com"
FLAGS = [
    "--project",
    "my-proj",
    "--region",
    "europe-west1",
    "--dataset",
    "app_analytics",
    "--bucket",
    "my-proj-dataflow",
]

#: Records its arguments; a lookup (describe/show) fails if it names anything in $FAKE_MISSING.
FAKE_TOOL = """
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
lookup = "describe" in sys.argv or "show" in sys.argv
missing = [m for m in os.environ.get("FAKE_MISSING", "").split(",") if m]
sys.exit(1 if lookup and any(m in " ".join(sys.argv) for m in missing) else 0)
"""


@pytest.fixture(autouse=True)
def default_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scripts' own default folder (tests/conftest.py points the variable elsewhere)."""
    monkeypatch.delenv(SCHEMAS_DIR_ENV, raising=False)


@pytest.fixture
def fake_tools(tmp_path: Path) -> dict[str, str]:
    """An environment whose gcloud and bq only record what they were asked to do."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("gcloud", "bq"):
        tool = bin_dir / name
        tool.write_text(f"#!{sys.executable}{FAKE_TOOL}")
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_LOG": str(tmp_path / "calls.jsonl"),
    }


def recorded(env: dict[str, str]) -> list[list[str]]:
    log = Path(env["FAKE_LOG"])
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def run_sa(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SA_SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def grants(lines: list[str]) -> set[tuple[str, str, str]]:
    """(resource, member, role) of every add-iam-policy-binding line."""
    out = set()
    for line in lines:
        words = shlex.split(line)
        if "add-iam-policy-binding" not in words:
            continue
        flags = dict(w[2:].split("=", 1) for w in words if w.startswith("--") and "=" in w)
        positional = [w for w in words[words.index("add-iam-policy-binding") + 1 :] if w[0] != "-"]
        assert len(positional) == 1, line
        out.add((f"{words[0]} {words[1]}:{positional[0]}", flags["member"], flags["role"]))
    return out


EXPECTED_GRANTS = {
    ("gcloud projects:my-proj", PIPELINE_SA, "roles/datastore.viewer"),
    ("gcloud projects:my-proj", PIPELINE_SA, "roles/bigquery.jobUser"),
    ("gcloud projects:my-proj", PIPELINE_SA, "roles/dataflow.worker"),
    ("bq --project_id=my-proj:my-proj:app_analytics", PIPELINE_SA, "roles/bigquery.dataEditor"),
    ("gcloud storage:gs://my-proj-dataflow", PIPELINE_SA, "roles/storage.objectAdmin"),
    ("gcloud artifacts:firestore-to-bq", PIPELINE_SA, "roles/artifactregistry.reader"),
    ("gcloud projects:my-proj", SCHEDULER_SA, "roles/dataflow.developer"),
    (
        "gcloud iam:firestore-to-bq@my-proj.iam.gserviceaccount.com",
        SCHEDULER_SA,
        "roles/iam.serviceAccountUser",
    ),
}


def test_service_accounts_dry_run_grants_exactly_the_needed_roles() -> None:
    done = run_sa(*FLAGS, "--dry_run")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()

    assert grants(lines) == EXPECTED_GRANTS
    assert len([line for line in lines if "add-iam-policy-binding" in line]) == len(EXPECTED_GRANTS)
    bq_line = next(line for line in lines if line.startswith("bq "))
    assert "--dataset" in shlex.split(bq_line)
    project_grants = [line for line in lines if line.startswith("gcloud projects")]
    assert all("--condition=None" in line for line in project_grants)


def test_service_accounts_are_looked_up_before_they_are_created() -> None:
    lines = run_sa(*FLAGS, "--dry_run").stdout.splitlines()
    creates = [line for line in lines if "service-accounts create" in line]
    assert len(creates) == 2
    for line, name in zip(creates, ("firestore-to-bq", "firestore-to-bq-scheduler"), strict=True):
        describe, create = line.split(" >/dev/null 2>&1 || ")
        assert describe == (
            f"gcloud iam service-accounts describe {name}@my-proj.iam.gserviceaccount.com "
            "--project=my-proj"
        )
        assert shlex.split(create)[:5] == ["gcloud", "iam", "service-accounts", "create", name]


def test_service_accounts_never_create_keys() -> None:
    out = run_sa(*FLAGS, "--dry_run").stdout
    assert "keys" not in out
    assert "keys create" not in SA_SCRIPT.read_text()


def test_service_accounts_take_environment_variables() -> None:
    env = {
        **os.environ,
        "PROJECT": "my-proj",
        "REGION": "europe-west1",
        "DATASET": "app_analytics",
        "BUCKET": "my-proj-dataflow",
    }
    by_env = run_sa("--dry_run", env=env)
    by_flags = run_sa(*FLAGS, "--dry_run")
    assert by_env.returncode == 0, by_env.stderr
    assert by_env.stdout == by_flags.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--project", "my-proj", "--dry_run"],
        [*FLAGS[:4], "--dataset", "app-analytics", *FLAGS[6:], "--dry_run"],
        [*FLAGS, "--bogus"],
    ],
)
def test_service_accounts_refuse_bad_arguments(args: list[str]) -> None:
    names = ("PROJECT", "REGION", "DATASET", "BUCKET", "REPOSITORY")
    done = run_sa(*args, env={k: v for k, v in os.environ.items() if k not in names})
    assert done.returncode == 2
    assert done.stdout == ""


def test_service_accounts_dry_run_calls_nothing(fake_tools: dict[str, str]) -> None:
    assert run_sa(*FLAGS, "--dry_run", env=fake_tools).returncode == 0
    assert recorded(fake_tools) == []


@pytest.mark.parametrize(
    ("missing", "creates"),
    [("", []), ("firestore-to-bq-scheduler@", ["firestore-to-bq-scheduler"])],
)
def test_service_accounts_real_run_creates_only_missing_accounts(
    fake_tools: dict[str, str], missing: str, creates: list[str]
) -> None:
    env = {**fake_tools, "FAKE_MISSING": missing}
    done = run_sa(*FLAGS, env=env)
    assert done.returncode == 0, done.stderr
    calls = recorded(env)
    assert [c[4] for c in calls if c[:4] == ["gcloud", "iam", "service-accounts", "create"]] == (
        creates
    )
    dry_grants = [
        line for line in run_sa(*FLAGS, "--dry_run").stdout.splitlines() if "add-iam" in line
    ]
    assert [shlex.join(c) for c in calls if "add-iam-policy-binding" in c] == dry_grants


@pytest.mark.parametrize("missing", ["my-proj:app_analytics", "gs://my-proj-dataflow", "artifacts"])
def test_service_accounts_stop_before_any_change_when_a_resource_is_missing(
    fake_tools: dict[str, str], missing: str
) -> None:
    env = {**fake_tools, "FAKE_MISSING": missing}
    done = run_sa(*FLAGS, env=env)
    assert done.returncode == 1
    assert "does not exist" in done.stderr
    assert all("add-iam-policy-binding" not in c and "create" not in c for c in recorded(env))


def test_script_is_valid_bash() -> None:
    assert subprocess.run(["bash", "-n", str(SA_SCRIPT)], timeout=30).returncode == 0


BUILD_ARGS = [
    "--project",
    "my-proj",
    "--region",
    "europe-west1",
    "--bucket",
    "my-proj-dataflow",
    "--tag",
    "v1",
]
IMAGE = "europe-west1-docker.pkg.dev/my-proj/firestore-to-bq/firestore-to-bq:v1"
BUILD_COMMANDS = [
    "gcloud builds submit --project my-proj --region europe-west1 --config "
    f"deploy/cloudbuild.yaml --substitutions _IMAGE={IMAGE},_SCHEMAS_DIR=schemas .",
    "gcloud dataflow flex-template build gs://my-proj-dataflow/templates/firestore-to-bq.json "
    f"--project my-proj --image {IMAGE} --sdk-language PYTHON "
    "--metadata-file deploy/metadata.json",
]


SCHEMAS_NOTE = (
    "# Table schemas baked into the image: {}/ (copied in as its schemas/; every run it "
    "starts reads them), so a schema change means rebuilding the image"
)


def test_build_template_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main([*BUILD_ARGS, "--dry_run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [SCHEMAS_NOTE.format("schemas"), *BUILD_COMMANDS]


def checkout(root: Path) -> Path:
    """A checkout to build from: .dockerignore, a shipped schemas/ and an app's own folder."""
    root.mkdir()
    shutil.copy(REPO_ROOT / ".dockerignore", root / ".dockerignore")
    for folder in ("schemas", "app/schemas", "tests/schemas"):
        (root / folder).mkdir(parents=True)
        shutil.copy(example_app.SCHEMAS / "tasks.json", root / folder / "tasks.json")
    return root


def test_build_template_bakes_the_chosen_folder_and_its_dry_run_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = checkout(tmp_path / "checkout")
    monkeypatch.setattr(build, "REPO_ROOT", root)
    monkeypatch.setattr(build, "metadata_is_current", lambda: True)  # checked elsewhere
    monkeypatch.chdir(root)
    assert build.main([*BUILD_ARGS, "--schemas_dir", "app/schemas", "--dry_run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == SCHEMAS_NOTE.format("app/schemas")
    assert f"--substitutions _IMAGE={IMAGE},_SCHEMAS_DIR=app/schemas ." in lines[1]
    # The same folder from F2BQ_SCHEMAS_DIR, as every other command takes it.
    monkeypatch.setenv(SCHEMAS_DIR_ENV, str(root / "app" / "schemas"))
    assert build.main([*BUILD_ARGS, "--dry_run"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == SCHEMAS_NOTE.format("app/schemas")


@pytest.mark.parametrize(
    ("folder", "message"),
    [
        ("tests/schemas", "is left out of the image's build context by .dockerignore (tests)"),
        ("elsewhere", "is outside the image's build context"),
        ("missing", "--schemas_dir: cannot read"),
        ("app", "--schemas_dir: "),  # no .json file: a schema error
    ],
)
def test_build_template_refuses_a_folder_it_cannot_bake(
    folder: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = checkout(tmp_path / "checkout")
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(example_app.SCHEMAS / "tasks.json", tmp_path / "elsewhere" / "tasks.json")
    monkeypatch.setattr(build, "REPO_ROOT", root)
    monkeypatch.chdir(root if folder != "elsewhere" else tmp_path)
    assert build.main([*BUILD_ARGS, "--schemas_dir", folder, "--dry_run"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert err.startswith("error: ") and message in err


def test_build_template_repository_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main([*BUILD_ARGS, "--repository", "dataflow", "--dry_run"]) == 0
    out = capsys.readouterr().out
    assert "europe-west1-docker.pkg.dev/my-proj/dataflow/firestore-to-bq:v1" in out


def _repo(root: Path) -> Path:
    """A one-commit git repository whose commit id is fixed: same content, names and dates."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    }  # fmt: skip
    root.mkdir()
    (root / "a.txt").write_text("a\n")
    for args in (["init", "-q"], ["add", "a.txt"], ["commit", "-q", "--no-gpg-sign", "-m", "a"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    return root


def test_build_template_tags_with_the_commit_by_default(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    assert build.default_tag(repo) == "0165bea0a755"
    (repo / "a.txt").write_text("changed\n")
    assert build.default_tag(repo) == "0165bea0a755-dirty"
    with pytest.raises(build.UsageError, match="pass --tag"):
        build.default_tag(tmp_path)


def test_build_template_dry_run_without_a_tag_names_the_checkout_commit(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build, "default_tag", lambda: "0123456789ab")
    assert build.main([*BUILD_ARGS[:-2], "--dry_run"]) == 0
    assert "/firestore-to-bq:0123456789ab " in capsys.readouterr().out


def test_build_template_runs_the_commands_in_order(fake_tools: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "build_template.py"), *BUILD_ARGS],
        capture_output=True,
        text=True,
        env=fake_tools,
        cwd="/",
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert [shlex.join(c) for c in recorded(fake_tools)] == BUILD_COMMANDS


def test_build_template_dry_run_calls_nothing(fake_tools: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "build_template.py"), *BUILD_ARGS, "--dry_run"],
        capture_output=True,
        text=True,
        env=fake_tools,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert recorded(fake_tools) == []


def test_build_template_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main([*BUILD_ARGS, "--tag", "bad tag", "--dry_run"]) == 2
    assert build.main([*BUILD_ARGS, "--bucket", "gs://x", "--dry_run"]) == 2


def test_dockerfile_points_the_launcher_at_the_pipeline() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "FROM gcr.io/dataflow-templates-base/python311-template-launcher-base" in dockerfile
    # The sync's extra brings Apache Beam; every folder setup.py declares is copied in.
    assert 'pip install --no-cache-dir ".[sync]"' in dockerfile
    for folder in ("pipelines", "f2bq_analytics"):
        assert f"COPY {folder} ./{folder}" in dockerfile, folder
    # The schema folder build_template names (a build argument, default schemas/) becomes
    # the package's schemas/, and the build fails unless the sync accepts it.
    assert "ARG SCHEMAS_DIR=schemas" in dockerfile
    assert "COPY ${SCHEMAS_DIR}/*.json ./schemas/" in dockerfile
    assert "COPY schemas/__init__.py ./schemas/" in dockerfile
    assert "python -m pipelines.firestore_to_bq schema check" in dockerfile
    config = (REPO_ROOT / build.BUILD_CONFIG).read_text()
    assert '"--build-arg", "SCHEMAS_DIR=${_SCHEMAS_DIR}", "--tag", "${_IMAGE}"' in config
    env = dict(
        line.removeprefix("ENV ").split("=", 1)
        for line in dockerfile.splitlines()
        if line.startswith("ENV ")
    )
    assert env["FLEX_TEMPLATE_PYTHON_PY_FILE"] == '"${WORKDIR}/pipelines/firestore_to_bq.py"'
    assert env["FLEX_TEMPLATE_PYTHON_SETUP_FILE"] == '"${WORKDIR}/setup.py"'
    assert (REPO_ROOT / "pipelines" / "firestore_to_bq.py").is_file()
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".emulators", "tests"} <= set(ignored)
    assert not {"pipelines", "schemas", "f2bq_analytics", "setup.py"} & set(ignored)
