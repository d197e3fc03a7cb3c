# Flex Template launcher image for the Firestore to BigQuery sync.
#
# Dataflow starts this container to run pipelines/firestore_to_bq.py, which
# builds the job graph and submits it; the workers then install this same
# package from the sdist Beam builds with setup.py (FLEX_TEMPLATE_PYTHON_SETUP_FILE).
# Built by scripts/build_template.py through Cloud Build; no local docker needed.
# The same image is the hourly Cloud Run Job (scripts/deploy_cloud_run_job.py), which
# overrides the entry point with `python -m pipelines.firestore_to_bq ... --runner DirectRunner`.
FROM gcr.io/dataflow-templates-base/python311-template-launcher-base

ARG WORKDIR=/template
WORKDIR ${WORKDIR}

# Only what the package is made of (see .dockerignore). f2bq_analytics is not used here,
# but setup.py declares it, so the install and the sdist for the workers need its folder.
COPY setup.py ./
COPY pipelines ./pipelines
COPY f2bq_analytics ./f2bq_analytics

# The table schemas: the folder scripts/build_template.py --schemas_dir names (relative
# to the build context; default schemas/), its .json files copied in as the package's
# schemas/. The launcher, the Dataflow workers (the sdist holds them) and the Cloud Run
# Job read these when no --schemas_dir is given, so a schema change means a new image.
ARG SCHEMAS_DIR=schemas
COPY schemas/__init__.py ./schemas/
COPY ${SCHEMAS_DIR}/*.json ./schemas/

# Install the package, with the sync's extra (Apache Beam), and its pinned dependencies
# at build time, so a launch installs nothing; then fail the build, not the nightly
# run, if it cannot import or its schemas do not pass the sync's own check.
RUN pip install --no-cache-dir ".[sync]" \
    && python -c "import pipelines.firestore_to_bq" \
    && python -m pipelines.firestore_to_bq schema check

ENV FLEX_TEMPLATE_PYTHON_PY_FILE="${WORKDIR}/pipelines/firestore_to_bq.py"
ENV FLEX_TEMPLATE_PYTHON_SETUP_FILE="${WORKDIR}/setup.py"
