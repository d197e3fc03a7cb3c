"""Is Firestore, is BigQuery there? Probes at the start of a run, hints when one fails.

Pointed at a closed port or an unreachable endpoint, the clients retry for
minutes (BigQuery's default retry lasts ten, a Firestore read
``--firestore_retry_timeout``) and then end in a long traceback. At the start of
a run that is not a transient error: one cheap call each, with a short
deadline, turns it into one line that names the endpoint and what to check,
before anything is read or written. Without Application Default Credentials
the clients fail at once (no auth retry, no prompt), and say so the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from google.api_core import exceptions as api_exceptions
from google.api_core import retry as api_retry
from google.auth import exceptions as auth_exceptions
from google.cloud import bigquery

from pipelines.services import bigquery as bq
from pipelines.services import error_text
from pipelines.services import firestore as fs

if TYPE_CHECKING:
    from pipelines.cli.options import SyncConfig

#: Seconds either probe keeps retrying (a server still starting up gets this long).
PROBE_DEADLINE = 12.0
#: Seconds one probe call may take.
PROBE_CALL_TIMEOUT = 8.0
NO_CREDENTIALS = (
    "no Google credentials: run `gcloud auth application-default login`, or point the "
    "run at the emulators (FIRESTORE_EMULATOR_HOST, BIGQUERY_EMULATOR_HOST)"
)


class Unreachable(RuntimeError):
    """A service did not answer at the start of a run; the message is one line."""


def check(config: SyncConfig) -> None:
    """Firestore, then BigQuery when a dataset is named; raises :class:`Unreachable`.

    A dry run with a dataset still reads the dataset's ``_sync_runs`` to plan.
    """
    check_firestore(config)
    if config.dataset:
        check_bigquery(config.project, config.dataset, config.location)


def firestore_endpoint(config: SyncConfig) -> str:
    host = fs.emulator_host()
    if host:
        return f"the Firestore emulator at {host} (FIRESTORE_EMULATOR_HOST)"
    return f"Firestore (project {config.project}, database {config.database})"


def firestore_hint() -> str:
    if fs.emulator_host():
        return (
            'start the emulator (eval "$(scripts/emulators.py up)") or, to use Firestore '
            "itself, unset FIRESTORE_EMULATOR_HOST"
        )
    return "check --project, --firestore_database and the network"


def check_firestore(config: SyncConfig) -> None:
    """Read at most one document of the first table at the run's snapshot."""
    endpoint = firestore_endpoint(config)
    keep = {config.project, config.database, *error_text.names(config.tables)}

    def reason(exc: BaseException) -> str:
        return error_text.one_line(exc, keep)

    retry = api_retry.Retry(
        predicate=fs.is_transient, initial=0.5, maximum=4.0, timeout=PROBE_DEADLINE
    )
    try:
        client = fs.make_client(config.project, config.database)
        query = fs.base_query(client, config.tables[0]).limit(1)
        list(query.stream(read_time=config.read_time, retry=retry, timeout=PROBE_CALL_TIMEOUT))
    except auth_exceptions.DefaultCredentialsError as exc:
        raise Unreachable(NO_CREDENTIALS) from exc
    except api_exceptions.RetryError as exc:
        cause = reason(exc.cause or exc)
        raise Unreachable(
            f"{endpoint} did not answer within {PROBE_DEADLINE:.0f} s ({cause}); {firestore_hint()}"
        ) from exc
    except (api_exceptions.NotFound, api_exceptions.PermissionDenied) as exc:
        raise Unreachable(
            f"{endpoint} refused the read ({reason(exc)}); check --project, "
            "--firestore_database and that the account may read Firestore "
            "(roles/datastore.viewer)"
        ) from exc
    except api_exceptions.GoogleAPICallError as exc:
        raise Unreachable(f"{endpoint} refused the read ({reason(exc)})") from exc


def bigquery_endpoint() -> str:
    endpoint = bq.emulator_endpoint()
    if endpoint:
        return f"the BigQuery emulator at {endpoint} (BIGQUERY_EMULATOR_HOST)"
    return "BigQuery (bigquery.googleapis.com)"


def check_bigquery(project: str, dataset: str, location: str | None = None) -> None:
    """Look the dataset up (missing is fine: a run creates it)."""
    endpoint = bigquery_endpoint()
    if bq.emulator_endpoint():
        hint = "start the emulator or unset BIGQUERY_EMULATOR_HOST"
    else:
        hint = "check the network, --project, and the credentials"
    try:
        client = bq.make_client(project, location)
        client.get_dataset(
            f"{project}.{dataset}",
            retry=bigquery.DEFAULT_RETRY.with_deadline(PROBE_DEADLINE),
            timeout=PROBE_CALL_TIMEOUT,
        )
    except api_exceptions.NotFound:
        return
    except auth_exceptions.DefaultCredentialsError as exc:
        raise Unreachable(NO_CREDENTIALS) from exc
    except api_exceptions.RetryError as exc:
        raise Unreachable(
            f"{endpoint} did not answer within {PROBE_DEADLINE:.0f} s "
            f"({_http_reason(exc.cause or exc)}); {hint}"
        ) from exc
    except (OSError, auth_exceptions.TransportError) as exc:  # requests' errors are OSErrors
        raise Unreachable(f"{endpoint} is unreachable ({_http_reason(exc)}); {hint}") from exc


def _http_reason(exc: BaseException) -> str:
    """``ConnectionError: [Errno 111] Connection refused`` rather than urllib3's whole story."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if reason is not None:
        return f"{type(exc).__name__}: {str(reason).rsplit('): ', 1)[-1]}"
    return error_text.one_line(exc)


def failure_hint(exc: BaseException) -> str:
    """What to check when a run failed on Firestore mid-read ("" for other failures).

    Only Firestore speaks gRPC here, so a gRPC error in the chain is Firestore's.
    """
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    for error in seen:
        cause = error.cause if isinstance(error, api_exceptions.RetryError) else error
        if isinstance(getattr(cause, "response", None), grpc.RpcError):
            return firestore_hint()
    return ""
