#!/usr/bin/env bash
# Create the sync's two service accounts and grant them exactly what they need.
#
#   scripts/create_service_accounts.sh --project P --region R --dataset D --bucket B \
#       [--repository firestore-to-bq] [--dry_run]
#   (or PROJECT=P REGION=R DATASET=D BUCKET=B [REPOSITORY=…] scripts/create_service_accounts.sh)
#
# firestore-to-bq@P             runs the Dataflow job (launcher and workers), and the
#                               Cloud Run Job's in-process runs (the first three and
#                               the dataset grant are all those need):
#   roles/datastore.viewer          project     read Firestore
#   roles/bigquery.jobUser          project     run load and query jobs
#   roles/dataflow.worker           project     be a Dataflow worker
#   roles/bigquery.dataEditor       DATASET     write the tables (this dataset only)
#   roles/storage.objectAdmin       gs://BUCKET temp and staging files (this bucket only)
#   roles/artifactregistry.reader   REPOSITORY  pull the template's launcher image
# firestore-to-bq-scheduler@P   is what Cloud Scheduler launches the nightly job as:
#   roles/dataflow.developer        project     launch Flex Template jobs
#   roles/iam.serviceAccountUser    the pipeline service account only, so it can start
#                                   jobs that run as that account and as no other
#   roles/run.invoker               the Cloud Run Job only (granted on the job by
#                                   scripts/deploy_cloud_run_job.py, which creates it)
#
# No keys are created: Dataflow and Cloud Scheduler use the accounts directly.
# Idempotent: accounts are looked up before they are created, and adding a binding
# that exists changes nothing. The dataset, bucket and repository must exist
# (scripts/setup_bigquery.py creates the dataset). --dry_run prints the commands.
set -euo pipefail

PIPELINE_NAME=firestore-to-bq
SCHEDULER_NAME=firestore-to-bq-scheduler
DRY_RUN=0
PROJECT=${PROJECT:-}
REGION=${REGION:-}
DATASET=${DATASET:-}
BUCKET=${BUCKET:-}
REPOSITORY=${REPOSITORY:-firestore-to-bq}

usage() {
    sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
}

die() {
    echo "create_service_accounts: error: $*" >&2
    exit 2
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --project | --region | --dataset | --bucket | --repository)
            [[ $# -ge 2 ]] || die "$1 needs a value"
            declare "$(tr '[:lower:]' '[:upper:]' <<<"${1#--}")=$2"
            shift 2
            ;;
        --project=* | --region=* | --dataset=* | --bucket=* | --repository=*)
            name=${1%%=*}
            declare "$(tr '[:lower:]' '[:upper:]' <<<"${name#--}")=${1#*=}"
            shift
            ;;
        --dry_run | --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage ;;
        *) die "unknown argument $1" ;;
    esac
done

[[ $PROJECT =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] || die "PROJECT '$PROJECT' is not a project id"
[[ $REGION =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || die "REGION '$REGION' is not a region"
[[ $DATASET =~ ^[A-Za-z_][A-Za-z0-9_]{0,299}$ ]] || die "DATASET '$DATASET' is not a dataset id"
[[ $BUCKET =~ ^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$ ]] || die "BUCKET '$BUCKET' is not a bucket"
[[ $REPOSITORY =~ ^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$ ]] || die "REPOSITORY '$REPOSITORY' is invalid"

PIPELINE_SA="${PIPELINE_NAME}@${PROJECT}.iam.gserviceaccount.com"
SCHEDULER_SA="${SCHEDULER_NAME}@${PROJECT}.iam.gserviceaccount.com"

# Quote like Python's shlex.quote, so dry-run lines read the same as the Python scripts'.
quote() {
    if [[ $1 =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
        printf '%s' "$1"
    else
        printf "'%s'" "${1//\'/\'\"\'\"\'}"
    fi
}

show() {
    local out="" arg
    for arg in "$@"; do out+="${out:+ }$(quote "$arg")"; done
    printf '%s\n' "$out"
}

# Run a command (or print it). Bindings on a just-created account can fail until IAM
# has propagated it, so retry a few times before giving up.
run() {
    if [[ $DRY_RUN == 1 ]]; then
        show "$@"
        return 0
    fi
    local attempt
    for attempt in 1 2 3 4 5; do
        echo "+ $(show "$@")" >&2
        if "$@" >/dev/null; then
            return 0
        fi
        [[ $attempt == 5 ]] && break
        echo "create_service_accounts: retrying in $((attempt * 5))s" >&2
        sleep $((attempt * 5))
    done
    echo "create_service_accounts: error: command failed: $(show "$@")" >&2
    exit 1
}

ensure_account() {
    local name=$1 display=$2 email="$1@${PROJECT}.iam.gserviceaccount.com"
    local describe=(gcloud iam service-accounts describe "$email" --project="$PROJECT")
    local create=(gcloud iam service-accounts create "$name" --project="$PROJECT"
        "--display-name=$display")
    if [[ $DRY_RUN == 1 ]]; then
        echo "$(show "${describe[@]}") >/dev/null 2>&1 || $(show "${create[@]}")"
    elif "${describe[@]}" >/dev/null 2>&1; then
        echo "service account $email exists" >&2
    else
        run "${create[@]}"
    fi
}

grant_project() {
    run gcloud projects add-iam-policy-binding "$PROJECT" \
        "--member=serviceAccount:$1" "--role=$2" --condition=None
}

# Resources the grants point at; checked first so a missing one changes nothing.
require() {
    local what=$1 hint=$2
    shift 2
    if ! "$@" >/dev/null 2>&1; then
        echo "create_service_accounts: error: $what does not exist (or is not visible to you)." \
            "$hint" >&2
        exit 1
    fi
}

if [[ $DRY_RUN == 0 ]]; then
    require "dataset $PROJECT:$DATASET" "Create it: scripts/setup_bigquery.py" \
        bq --project_id="$PROJECT" show --dataset "$PROJECT:$DATASET"
    require "bucket gs://$BUCKET" \
        "Create it: gcloud storage buckets create gs://$BUCKET --project=$PROJECT" \
        gcloud storage buckets describe "gs://$BUCKET"
    require "repository $REPOSITORY" \
        "Create it: gcloud artifacts repositories create $REPOSITORY --repository-format=docker --location=$REGION --project=$PROJECT" \
        gcloud artifacts repositories describe "$REPOSITORY" --project="$PROJECT" \
        --location="$REGION"
fi

ensure_account "$PIPELINE_NAME" "Firestore to BigQuery sync (Dataflow jobs)"
ensure_account "$SCHEDULER_NAME" "Firestore to BigQuery nightly launcher (Cloud Scheduler)"

grant_project "$PIPELINE_SA" roles/datastore.viewer
grant_project "$PIPELINE_SA" roles/bigquery.jobUser
grant_project "$PIPELINE_SA" roles/dataflow.worker
run bq --project_id="$PROJECT" add-iam-policy-binding --dataset \
    "--member=serviceAccount:$PIPELINE_SA" --role=roles/bigquery.dataEditor "$PROJECT:$DATASET"
run gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" \
    "--member=serviceAccount:$PIPELINE_SA" --role=roles/storage.objectAdmin
run gcloud artifacts repositories add-iam-policy-binding "$REPOSITORY" \
    --project="$PROJECT" --location="$REGION" \
    "--member=serviceAccount:$PIPELINE_SA" --role=roles/artifactregistry.reader

grant_project "$SCHEDULER_SA" roles/dataflow.developer
run gcloud iam service-accounts add-iam-policy-binding "$PIPELINE_SA" --project="$PROJECT" \
    "--member=serviceAccount:$SCHEDULER_SA" --role=roles/iam.serviceAccountUser

if [[ $DRY_RUN == 0 ]]; then
    echo "create_service_accounts: done: $PIPELINE_SA, $SCHEDULER_SA" >&2
fi
