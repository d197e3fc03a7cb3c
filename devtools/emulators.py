"""Start and stop local Firestore and BigQuery emulators for development and tests.

Usage::

    eval "$(python scripts/emulators.py up)"   # start both, export their env vars
    python scripts/emulators.py status
    python scripts/emulators.py env            # re-print the export lines
    python scripts/emulators.py down           # stop exactly what `up` started; forget the data
    python scripts/emulators.py down --keep_data   # stop, keep both emulators' data for `up`
    python scripts/emulators.py prepare        # install DuckDB extensions, locate java + jar

``tests/conftest.py``, the demo and the benchmark use ``start`` and ``Emulators``.
Both emulators start empty, unless the last ``down`` was ``down --keep_data``: that
exports Firestore's documents to ``<state-dir>/firestore/`` and keeps BigQuery's tables in
``<state-dir>/bigquery/``, and the next ``up`` starts from both. A plain ``down`` deletes
both, so the two never disagree (an ``up`` that finds BigQuery data without a Firestore
export, e.g. after a crash, deletes it). Only the standard library is used.
Every process we start gets its own session (process group); its pid is recorded in
``<state-dir>/state.json`` and ``down`` signals only those recorded groups, after checking
that the pid still belongs to an emulator, so we never kill an unrelated process.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from devtools import REPO_ROOT

DEFAULT_STATE_DIR = REPO_ROOT / ".emulators"
DEFAULT_PROJECT = "demo-project"
HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0

FIRESTORE_MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
FIRESTORE_JAR_RELPATH = Path("platform/cloud-firestore-emulator/cloud-firestore-emulator.jar")
FIRESTORE_DEB_PACKAGE = "google-cloud-cli-firestore-emulator"
FIRESTORE_FALLBACK_JAR = Path("/usr/lib/google-cloud-sdk") / FIRESTORE_JAR_RELPATH

# Substrings that must appear in a recorded pid's command line before we signal it; this
# guards against pid reuse after a reboot or a crash.
FIRESTORE_MARKER = "cloud-firestore-emulator"
BIGQUERY_MARKER = "bqemulator"

STATE_FILE = "state.json"
FIRESTORE_DATA = "firestore"
BIGQUERY_DATA = "bigquery"
EXPORT_SUFFIX = ".overall_export_metadata"
FIRESTORE_LOG = "firestore.log"
BIGQUERY_LOG = "bigquery.log"


class EmulatorError(RuntimeError):
    """A failure with a one-line, user-facing explanation."""


def _info(msg: str) -> None:
    """Human messages go to stderr so that stdout stays `eval`-able."""
    print(f"emulators: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- discovery


def find_java() -> str | None:
    """Prefer $JAVA_HOME so a deliberately chosen JDK wins over whatever is on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("java")


def _gcloud_sdk_root() -> Path | None:
    """Ask gcloud where its SDK lives; bounded because gcloud can hang on first-run prompts."""
    gcloud = shutil.which("gcloud")
    if not gcloud:
        return None
    try:
        out = subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    root = out.stdout.strip()
    return Path(root) if out.returncode == 0 and root else None


def _dpkg_jar() -> Path | None:
    """The Debian package installs the jar at a fixed path we can ask dpkg for."""
    if not shutil.which("dpkg"):
        return None
    try:
        out = subprocess.run(
            ["dpkg", "-L", FIRESTORE_DEB_PACKAGE],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    for line in out.stdout.splitlines():
        if line.endswith(".jar") and "cloud-firestore-emulator" in line:
            return Path(line)
    return None


def find_firestore_jar() -> Path | None:
    """Locate the emulator jar: explicit env var first, then the usual SDK install layouts."""
    explicit = os.environ.get("FIRESTORE_EMULATOR_JAR")
    if explicit:
        # An explicit setting that is wrong should fail loudly rather than be skipped.
        return Path(explicit) if Path(explicit).is_file() else None
    sdk_root = os.environ.get("CLOUDSDK_ROOT_DIR")
    if sdk_root and (Path(sdk_root) / FIRESTORE_JAR_RELPATH).is_file():
        return Path(sdk_root) / FIRESTORE_JAR_RELPATH
    gcloud_root = _gcloud_sdk_root()
    if gcloud_root and (gcloud_root / FIRESTORE_JAR_RELPATH).is_file():
        return gcloud_root / FIRESTORE_JAR_RELPATH
    dpkg_jar = _dpkg_jar()
    if dpkg_jar and dpkg_jar.is_file():
        return dpkg_jar
    if FIRESTORE_FALLBACK_JAR.is_file():
        return FIRESTORE_FALLBACK_JAR
    return None


def ensure_duckdb_extensions() -> None:
    """Install DuckDB's spatial and avro extensions from the pip wheels.

    bqemulator loads them at startup and would otherwise download them from the internet,
    which fails offline. Installing is idempotent (it copies into ~/.duckdb/extensions).
    """
    import duckdb  # imported lazily: only `up`/`prepare` need it
    import duckdb_extensions

    con = duckdb.connect()
    try:
        duckdb_extensions.import_extension("spatial", con=con)
        duckdb_extensions.import_extension("avro", con=con)
    finally:
        con.close()


def _bqemulator_cmd() -> list[str]:
    """Prefer `python -m bqemulator` so we use the current interpreter's install."""
    try:
        probe = subprocess.run(
            [sys.executable, "-m", "bqemulator", "start", "--help"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if probe.returncode == 0:
            return [sys.executable, "-m", "bqemulator"]
    except (OSError, subprocess.TimeoutExpired):
        pass
    script = Path(sys.executable).parent / "bqemulator"
    if os.access(script, os.X_OK):
        return [str(script)]
    raise EmulatorError(f"bqemulator is not installed for {sys.executable}; run `make setup`")


# --------------------------------------------------------------------------- processes


def free_ports(count: int) -> list[int]:
    """Let the kernel pick distinct free loopback ports; hold them all until we have `count`."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _proc_state(pid: int) -> str | None:
    """Return the /proc state letter, or None if the pid does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "?"
    # The command name is in parentheses and may contain spaces; the state follows it.
    return stat.rsplit(")", 1)[1].split()[0]


def pid_alive(pid: int | None) -> bool:
    """True if the pid exists and is not a zombie (zombies linger if nobody reaps them)."""
    if not pid:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap if it is our own exited child
    if Path("/proc").is_dir():
        state = _proc_state(pid)
        return state is not None and state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _group_alive(pgid: int) -> bool:
    """True if any non-zombie process is still in the process group."""
    if not Path("/proc").is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pgid, os.WNOHANG)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            rest = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # Fields after the command: state, ppid, pgrp, ...
        if int(rest[2]) == pgid and rest[0] not in ("Z", "X"):
            return True
    return False


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _is_ours(pid: int, marker: str) -> bool:
    """Check the pid still leads its own group and runs the emulator we recorded."""
    try:
        if os.getpgid(pid) != pid:
            return False
    except ProcessLookupError:
        return False
    if Path("/proc").is_dir():
        return marker in _cmdline(pid)
    return True


def stop_process(pid: int | None, marker: str, name: str) -> None:
    """SIGTERM the recorded process group, wait, then SIGKILL; skip pids that are not ours."""
    if not pid or not pid_alive(pid):
        return
    if not _is_ours(pid, marker):
        _info(f"{name}: pid {pid} no longer belongs to the emulator; not signalling it")
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _group_alive(pid):
            return
        time.sleep(0.1)
    _info(f"{name}: still running {STOP_TIMEOUT_S:.0f}s after SIGTERM; sending SIGKILL")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.1)


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _http_ok(url: str, expect_body: str | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status != 200:
                return False
            return expect_body is None or resp.read().decode().strip() == expect_body
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _spawn(cmd: list[str], log_path: Path, name: str) -> subprocess.Popen[bytes]:
    """Start detached in a new session so it survives the CLI and can be killed as a group."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(cmd)}\n".encode())
        log.flush()
        try:
            return subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=log_path.parent,
            )
        except OSError as exc:
            raise EmulatorError(f"{name}: cannot run {cmd[0]}: {exc}") from exc


def _wait_ready(
    proc: subprocess.Popen[bytes], url: str, log_path: Path, name: str, expect: str | None
) -> float:
    """Poll until `url` answers; on death or timeout, fail with the log tail (one line)."""
    t0 = time.monotonic()
    deadline = t0 + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmulatorError(
                f"{name} exited with code {proc.returncode} during startup; "
                f"log {log_path}: {_log_tail(log_path)}"
            )
        if _http_ok(url, expect):
            return time.monotonic() - t0
        time.sleep(0.2)
    _kill_group(proc)
    raise EmulatorError(
        f"{name} did not answer {url} within {READY_TIMEOUT_S:.0f}s; "
        f"log {log_path}: {_log_tail(log_path)}"
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Clean up a process we just spawned ourselves (so pid reuse is impossible)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


# --------------------------------------------------------------------------- Emulators


@dataclass
class Emulators:
    """Handle on a running pair of emulators; persisted as `<state_dir>/state.json`."""

    firestore_host: str
    bigquery_endpoint: str
    project: str
    state_dir: Path
    firestore_pid: int | None = None
    bigquery_pid: int | None = None
    bigquery_grpc_port: int = 0
    # Popen handles of children started by this process, so we can reap them.
    _procs: dict[str, subprocess.Popen[bytes]] = field(
        default_factory=dict, repr=False, compare=False
    )

    # ---- derived values

    @property
    def firestore_port(self) -> int:
        return int(self.firestore_host.rsplit(":", 1)[1])

    @property
    def bigquery_port(self) -> int:
        return int(self.bigquery_endpoint.rsplit(":", 1)[1])

    @property
    def firestore_log(self) -> Path:
        return self.state_dir / FIRESTORE_LOG

    @property
    def bigquery_log(self) -> Path:
        return self.state_dir / BIGQUERY_LOG

    @property
    def bigquery_data_dir(self) -> Path:
        return self.state_dir / BIGQUERY_DATA

    @property
    def firestore_data_dir(self) -> Path:
        """Where ``down --keep_data`` exports Firestore's documents for the next start."""
        return self.state_dir / FIRESTORE_DATA

    def firestore_export(self) -> Path | None:
        """The kept Firestore export, if ``down --keep_data`` left one."""
        return next(self.firestore_data_dir.glob(f"*/*{EXPORT_SUFFIX}"), None)

    def env(self) -> dict[str, str]:
        """The variables the Google client libraries read to talk to the emulators."""
        return {
            "FIRESTORE_EMULATOR_HOST": self.firestore_host,
            "BIGQUERY_EMULATOR_HOST": self.bigquery_endpoint,
            "GOOGLE_CLOUD_PROJECT": self.project,
        }

    def export_lines(self) -> str:
        return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in self.env().items())

    # ---- liveness

    def firestore_alive(self) -> bool:
        return pid_alive(self.firestore_pid)

    def bigquery_alive(self) -> bool:
        return pid_alive(self.bigquery_pid)

    def firestore_ready(self) -> bool:
        return _http_ok(f"http://{self.firestore_host}/", "Ok")

    def bigquery_ready(self) -> bool:
        return _http_ok(f"{self.bigquery_endpoint}/bigquery/v2/projects/{self.project}/datasets")

    # ---- lifecycle

    def start_firestore(self) -> None:
        """(Re)start the Firestore emulator on the recorded port: empty, or from the kept export.

        A kept export is read once: it is deleted once the emulator has loaded it.
        """
        if self.firestore_alive():
            return
        java = find_java()
        if not java:
            raise EmulatorError("java not found on PATH (or $JAVA_HOME); run `make setup`")
        jar = find_firestore_jar()
        if not jar:
            raise EmulatorError(
                "Firestore emulator jar not found; install the Debian package "
                f"{FIRESTORE_DEB_PACKAGE} or set FIRESTORE_EMULATOR_JAR"
            )
        cmd = [
            java,
            "-cp",
            str(jar),
            FIRESTORE_MAIN_CLASS,
            f"--host={HOST}",
            f"--port={self.firestore_port}",
        ]
        export = self.firestore_export()
        if export is not None:
            cmd.append(f"--import-data={export}")
        proc = _spawn(cmd, self.firestore_log, "firestore emulator")
        self._procs["firestore"] = proc
        self.firestore_pid = proc.pid
        self.save()
        took = _wait_ready(
            proc, f"http://{self.firestore_host}/", self.firestore_log, "firestore emulator", "Ok"
        )
        _info(f"firestore emulator ready on {self.firestore_host} in {took:.1f}s")
        if export is not None:
            _info(f"firestore emulator loaded the data kept in {self.firestore_data_dir}")
            shutil.rmtree(self.firestore_data_dir, ignore_errors=True)

    def start_bigquery(self) -> None:
        """(Re)start bqemulator on the recorded ports; data persists in the same data dir."""
        if self.bigquery_alive():
            return
        ensure_duckdb_extensions()
        if not self.bigquery_grpc_port:
            self.bigquery_grpc_port = free_ports(1)[0]
        self.bigquery_data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            *_bqemulator_cmd(),
            "start",
            "--rest-host",
            HOST,
            "--rest-port",
            str(self.bigquery_port),
            "--grpc-host",
            HOST,
            "--grpc-port",
            str(self.bigquery_grpc_port),
            "--project",
            self.project,
            "--persistent",
            "--data-dir",
            str(self.bigquery_data_dir),
            "--log-level",
            "warning",
        ]
        proc = _spawn(cmd, self.bigquery_log, "bigquery emulator")
        self._procs["bigquery"] = proc
        self.bigquery_pid = proc.pid
        self.save()
        url = f"{self.bigquery_endpoint}/bigquery/v2/projects/{self.project}/datasets"
        took = _wait_ready(proc, url, self.bigquery_log, "bigquery emulator", None)
        _info(f"bigquery emulator ready on {self.bigquery_endpoint} in {took:.1f}s")

    def stop_firestore(self) -> None:
        stop_process(self.firestore_pid, FIRESTORE_MARKER, "firestore emulator")
        self._reap("firestore")
        self.firestore_pid = None
        self.save()

    def stop_bigquery(self) -> None:
        stop_process(self.bigquery_pid, BIGQUERY_MARKER, "bigquery emulator")
        self._reap("bigquery")
        self.bigquery_pid = None
        self.save()

    def stop(self, keep_data: bool = False) -> None:
        """Stop both emulators and forget them (removes state.json).

        Their data goes too, unless ``keep_data``: then Firestore's documents are exported
        and BigQuery's tables stay, and the next start in this state dir begins from both.
        """
        if keep_data:
            self.export_firestore()
        self.halt()
        if not keep_data:
            self.forget_data()

    def halt(self) -> None:
        """Stop both emulators and remove state.json; leave their data dirs as they are."""
        self.stop_firestore()
        self.stop_bigquery()
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / STATE_FILE).unlink()

    def forget_data(self) -> None:
        """Delete both emulators' kept data (only while they are stopped)."""
        shutil.rmtree(self.firestore_data_dir, ignore_errors=True)
        shutil.rmtree(self.bigquery_data_dir, ignore_errors=True)

    def export_firestore(self) -> None:
        """Export every document to ``firestore_data_dir`` (emulator-only endpoint)."""
        if not self.firestore_alive():
            raise EmulatorError(
                "firestore emulator is not running, so its data cannot be kept; "
                "run `down` without --keep_data"
            )
        shutil.rmtree(self.firestore_data_dir, ignore_errors=True)
        self.firestore_data_dir.mkdir(parents=True)
        body = json.dumps(
            {
                "database": f"projects/{self.project}/databases/(default)",
                "export_directory": str(self.firestore_data_dir),
            }
        ).encode()
        req = urllib.request.Request(
            f"http://{self.firestore_host}/emulator/v1/projects/{self.project}:export",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            if resp.status != 200:
                raise EmulatorError(f"firestore export failed: HTTP {resp.status}")
        if self.firestore_export() is None:
            raise EmulatorError(f"firestore export wrote nothing to {self.firestore_data_dir}")

    def reset_firestore(self) -> None:
        """Delete every document in the default database (emulator-only endpoint)."""
        url = (
            f"http://{self.firestore_host}/emulator/v1/projects/{self.project}"
            "/databases/(default)/documents"
        )
        req = urllib.request.Request(url, method="DELETE")
        with urllib.request.urlopen(req, timeout=10) as resp:
            if resp.status != 200:
                raise EmulatorError(f"firestore reset failed: HTTP {resp.status}")

    def _reap(self, name: str) -> None:
        proc = self._procs.pop(name, None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    # ---- persistence

    def to_json(self) -> dict[str, object]:
        return {
            "project": self.project,
            "firestore": {
                "pid": self.firestore_pid,
                "host": self.firestore_host,
                "port": self.firestore_port,
                "log": str(self.firestore_log),
            },
            "bigquery": {
                "pid": self.bigquery_pid,
                "endpoint": self.bigquery_endpoint,
                "port": self.bigquery_port,
                "grpc_port": self.bigquery_grpc_port,
                "data_dir": str(self.bigquery_data_dir),
                "log": str(self.bigquery_log),
            },
        }

    def save(self) -> None:
        """Write state.json atomically so a concurrent reader never sees half a file."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(self.state_dir / STATE_FILE)


def emulators_from_state(state_dir: Path | str) -> Emulators | None:
    """Load the recorded emulators (running or not); None if there is no usable state.json."""
    state_dir = Path(state_dir).resolve()
    try:
        data = json.loads((state_dir / STATE_FILE).read_text())
        fs, bq = data["firestore"], data["bigquery"]
        return Emulators(
            firestore_host=fs["host"],
            bigquery_endpoint=bq["endpoint"],
            project=data["project"],
            state_dir=state_dir,
            firestore_pid=fs.get("pid"),
            bigquery_pid=bq.get("pid"),
            bigquery_grpc_port=int(bq.get("grpc_port") or 0),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """Serialize `up`/`down` on one state dir so two callers don't start two pairs."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def start(state_dir: Path, project: str = DEFAULT_PROJECT) -> Emulators:
    """Start both emulators, or reuse the ones already recorded in `state_dir`.

    Reuse keeps `up` idempotent; an emulator that died is restarted on its old port so
    previously exported environment variables stay valid.
    """
    state_dir = Path(state_dir).resolve()
    with _locked(state_dir):
        emu = emulators_from_state(state_dir)
        if emu is not None and not (emu.firestore_alive() or emu.bigquery_alive()):
            emu = None  # stale state (e.g. after a reboot): start fresh on new ports
        if emu is not None and emu.project != project:
            raise EmulatorError(
                f"emulators in {state_dir} run for project {emu.project!r}, not {project!r}; "
                "run `down` first"
            )
        if emu is None:
            fs_port, bq_port, grpc_port = free_ports(3)
            emu = Emulators(
                firestore_host=f"{HOST}:{fs_port}",
                bigquery_endpoint=f"http://{HOST}:{bq_port}",
                project=project,
                state_dir=state_dir,
                bigquery_grpc_port=grpc_port,
            )
            if emu.firestore_export() is None:
                emu.forget_data()  # BigQuery data without Firestore's (a crash): start both empty
            emu.save()
        try:
            emu.start_firestore()
            emu.start_bigquery()
        except BaseException:
            emu.halt()  # keeps data a `down --keep_data` left for this start
            raise
        return emu


# --------------------------------------------------------------------------- CLI


def _cmd_up(args: argparse.Namespace) -> int:
    emu = start(args.state_dir, args.project)
    sys.stdout.write(emu.export_lines())
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    state_dir = args.state_dir.resolve()
    with _locked(state_dir):
        emu = emulators_from_state(state_dir)
        if emu is None:
            _info(f"nothing recorded in {state_dir / STATE_FILE}; nothing to stop")
            return 0
        emu.stop(keep_data=args.keep_data)
    _info(f"stopped; data kept in {state_dir}" if args.keep_data else "stopped; data deleted")
    return 0


def _cmd_env(args: argparse.Namespace) -> int:
    emu = emulators_from_state(args.state_dir)
    if emu is None:
        _info(f"no emulators recorded in {args.state_dir}; run `up` first")
        return 1
    sys.stdout.write(emu.export_lines())
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    emu = emulators_from_state(args.state_dir)
    if emu is None:
        print("firestore: down\nbigquery: down")
        return 1
    fs_up = emu.firestore_alive() and emu.firestore_ready()
    bq_up = emu.bigquery_alive() and emu.bigquery_ready()
    print(f"firestore: {'up' if fs_up else 'down'} {emu.firestore_host} pid={emu.firestore_pid}")
    print(f"bigquery: {'up' if bq_up else 'down'} {emu.bigquery_endpoint} pid={emu.bigquery_pid}")
    return 0 if fs_up and bq_up else 1


def _cmd_prepare(_args: argparse.Namespace) -> int:
    ok = True
    try:
        ensure_duckdb_extensions()
        _info("duckdb spatial + avro extensions installed")
    except Exception as exc:  # report any failure as one line
        _info(f"cannot install duckdb extensions: {exc}")
        ok = False
    java = find_java()
    if java:
        _info(f"java: {java}")
    else:
        _info("java: NOT FOUND (install a JRE, e.g. apt-get install default-jre-headless)")
        ok = False
    jar = find_firestore_jar()
    if jar:
        _info(f"firestore emulator jar: {jar}")
    else:
        _info(f"firestore emulator jar: NOT FOUND (install {FIRESTORE_DEB_PACKAGE})")
        ok = False
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    handlers = {
        "up": (_cmd_up, "start both emulators and print export lines"),
        "down": (_cmd_down, "stop the emulators recorded in the state dir"),
        "env": (_cmd_env, "print export lines for the running emulators"),
        "status": (_cmd_status, "show whether each emulator is up"),
        "prepare": (_cmd_prepare, "install DuckDB extensions, locate java and the jar"),
    }
    for name, (func, help_text) in handlers.items():
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(func=func)
        if name != "prepare":
            p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
        if name == "up":
            p.add_argument("--project", default=DEFAULT_PROJECT)
        if name == "down":
            p.add_argument(
                "--keep_data",
                action="store_true",
                help="keep both emulators' data for the next `up` (default: delete it)",
            )
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except EmulatorError as exc:
        _info(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
