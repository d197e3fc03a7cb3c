#!/usr/bin/env bash
# Prepare a development/CI environment: .venv with the project + dev extras, DuckDB
# extensions for bqemulator (it cannot download them offline), java and the Firestore
# emulator jar. Safe to run repeatedly.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

FIRESTORE_DEB=google-cloud-cli-firestore-emulator

log() { echo "setup_dev: $*" >&2; }

can_apt() { [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; }

# --- Python environment ------------------------------------------------------------
if [[ ! -x .venv/bin/python ]]; then
    log "creating .venv"
    python3 -m venv .venv
fi

# A failed pip upgrade (e.g. offline) is not a reason to stop: the bundled pip works.
.venv/bin/python -m pip install --quiet --upgrade pip || log "warning: could not upgrade pip"

if [[ ! -f setup.py && ! -f pyproject.toml ]]; then
    log "error: no setup.py in $(pwd); cannot install the project"
    exit 1
fi
.venv/bin/python -m pip install --quiet -e ".[dev]"

# --- Java for the Firestore emulator -----------------------------------------------
if ! command -v java >/dev/null 2>&1 && [[ -z "${JAVA_HOME:-}" ]]; then
    if can_apt; then
        log "java not found; installing default-jre-headless"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y default-jre-headless
    else
        log "error: java not found; install a JRE (e.g. apt-get install default-jre-headless)"
        exit 1
    fi
fi
java_bin=java
if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    java_bin="$JAVA_HOME/bin/java"
fi
"$java_bin" -version 2>&1 | head -n 1 >&2

# --- DuckDB extensions + emulator discovery ----------------------------------------
# `prepare` installs the extensions and reports where java and the jar were found.
if ! .venv/bin/python scripts/emulators.py prepare; then
    if can_apt && apt-cache show "$FIRESTORE_DEB" >/dev/null 2>&1; then
        log "installing $FIRESTORE_DEB"
        DEBIAN_FRONTEND=noninteractive apt-get install -y "$FIRESTORE_DEB"
        .venv/bin/python scripts/emulators.py prepare
    else
        log "error: prerequisites missing (see above). The Firestore emulator jar comes from" \
            "the Debian package $FIRESTORE_DEB (Google Cloud apt repository), or set" \
            "FIRESTORE_EMULATOR_JAR to the jar's path."
        exit 1
    fi
fi

log "done"
