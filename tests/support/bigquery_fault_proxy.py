"""An HTTP proxy in front of bqemulator that fails chosen query jobs as BigQuery would.

bqemulator serialises concurrent transactions, so it never aborts one. This proxy
forwards every request unchanged, except the first ``times`` query jobs whose SQL
contains every string of ``match``: it accepts the job (``jobs.insert`` answers
200, ``RUNNING``, without the emulator ever seeing the script) and then reports it
failed on ``jobs.get`` with the error BigQuery gives a transaction cancelled by a
concurrent update (a 400 ``invalidQuery`` whose message starts "Transaction is
aborted due to concurrent update against table"; see
https://cloud.google.com/bigquery/docs/troubleshoot-queries). Nothing of the
failed job reached the tables, as on BigQuery.

``table_rows`` makes tables look large: ``tables.get`` of a table named there
answers its ``numRows`` (bqemulator's tables are as small as the test's data).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_JOB = re.compile(r"/projects/([^/]+)/(jobs|queries)/([^/?]+)")
_TABLE = re.compile(r"/projects/[^/]+/datasets/[^/]+/tables/([^/?]+)\Z")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class AbortingBigQueryProxy:
    def __init__(
        self,
        upstream: str,
        match: Sequence[str] = (),
        table: str = "",
        times: int = 0,
        table_rows: Mapping[str, int] | None = None,
    ) -> None:
        parts = urlsplit(upstream if "://" in upstream else f"http://{upstream}")
        self.table_rows = dict(table_rows or {})
        self.rewritten: list[str] = []  # tables whose numRows was answered from table_rows
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.match = tuple(match)
        self.table = table
        self.left = times
        self.aborted: list[str] = []  # job ids answered with the abort
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._server.shutdown()
            self._server.server_close()

    def _take(self, body: bytes) -> bool:
        """Whether this ``jobs.insert`` body is a job to abort (and one is left)."""
        try:
            sql = json.loads(body or b"{}")["configuration"]["query"]["query"]
        except (ValueError, KeyError, TypeError):
            return False
        with self._lock:
            if self.left > 0 and all(m in sql for m in self.match):
                self.left -= 1
                return True
        return False

    def _table_metadata(self, command: str, path: str, data: bytes) -> bytes:
        """``tables.get`` of a table in ``table_rows``: its ``numRows`` replaced."""
        found = _TABLE.search(urlsplit(path).path)
        if command != "GET" or not found or found.group(1) not in self.table_rows:
            return data
        try:
            table = json.loads(data)
        except ValueError:
            return data
        table["numRows"] = str(self.table_rows[found.group(1)])
        self.rewritten.append(found.group(1))
        return json.dumps(table).encode()

    def _error(self, project: str) -> dict:
        message = (
            f"Transaction is aborted due to concurrent update against table "
            f"{project}:{self.table}. Transaction ID: fault-proxy"
        )
        return {"reason": "invalidQuery", "location": "query", "message": message}

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _reply(self, status: int, payload: dict | bytes, headers=()) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                if not isinstance(payload, bytes):
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _faked(self, body: bytes) -> bool:
                path = urlsplit(self.path).path
                found = _JOB.search(path)
                if self.command == "POST" and path.endswith("/jobs") and proxy._take(body):
                    request = json.loads(body)
                    reference = request.get("jobReference") or {}
                    project = path.split("/projects/")[1].split("/")[0]
                    job_id = reference.get("jobId") or f"fault_{len(proxy.aborted)}"
                    proxy.aborted.append(job_id)
                    self._reply(200, _job(request, project, job_id, {"state": "RUNNING"}))
                    return True
                if found and found.group(3) in proxy.aborted:
                    project, kind, job_id = found.groups()
                    error = proxy._error(project)
                    if kind == "queries":  # getQueryResults of a failed job: the error
                        body = {"code": 400, "message": error["message"], "errors": [error]}
                        self._reply(400, {"error": {**body, "status": "INVALID_ARGUMENT"}})
                    else:
                        status = {"state": "DONE", "errorResult": error, "errors": [error]}
                        self._reply(200, _job({}, project, job_id, status))
                    return True
                return False

            def _forward(self) -> None:
                body = self._body()
                if self._faked(body):
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=300)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    answer = conn.getresponse()
                    data = proxy._table_metadata(self.command, self.path, answer.read())
                    kept = [
                        (k, v) for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP
                    ]
                    self._reply(answer.status, data, kept)
                finally:
                    conn.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        return Handler


def _job(request: dict, project: str, job_id: str, status: dict) -> dict:
    return {
        "kind": "bigquery#job",
        "id": f"{project}:{job_id}",
        "jobReference": {"projectId": project, "jobId": job_id, "location": "US"},
        "configuration": request.get("configuration") or {"query": {}, "jobType": "QUERY"},
        "status": status,
        "statistics": {"creationTime": "0", "startTime": "0"},
    }
