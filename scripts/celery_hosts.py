"""A Celery deployment of DataLoader on this machine: code server, daemon and N worker "hosts".

    python scripts/celery_hosts.py start --hosts 3 [--root DIR] [--concurrency 2]
    python scripts/celery_hosts.py status|stop [--root DIR]
    python scripts/celery_hosts.py kill HOST [--root DIR]     # SIGKILL one host's whole session

(`make celery-hosts N=3`, `make celery-stop`.) Each process gets its own folder under the root
(default .dataloader/celery) as working directory, with its own DAGSTER_HOME holding a copy of
deploy/celery/dagster.yaml, its own TMPDIR and state folder — no two share a local path. What they
share is what hosts share: the control database and Dagster's storage in PostgreSQL, the lake on
object storage, RabbitMQ and Redis. Required: DATALOADER_CONTROL_DB_URL, DAGSTER_PG_URL
(postgresql+psycopg2://…) and DATALOADER_LAKE_ROOT on object storage (with
DATALOADER_LAKE_STORAGE_OPTIONS or the AWS_* variables); DATALOADER_CELERY_BROKER_URL and
DATALOADER_CELERY_BACKEND_URL default to this machine's RabbitMQ and Redis. Every other variable of
this shell (sensor intervals, DATALOADER_* settings) is passed on.

Every process leads its own session; `stop` ends every member of every session (Celery pool
processes, Pipes workers, Dagster's code-server children included) and fails when one survives.
The layout is in ROOT/cluster.json; each process logs to its folder's `log`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from process_sessions import session_members, signal_sessions, stop_sessions  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy" / "celery"
BIN = Path(sys.executable).parent
DEFAULT_ROOT = REPO / ".dataloader" / "celery"
DEFAULTS = {
    "DATALOADER_CELERY_BROKER_URL": "pyamqp://guest:guest@127.0.0.1:5672//",
    "DATALOADER_CELERY_BACKEND_URL": "redis://127.0.0.1:6379/0",
}
REQUIRED = ("DATALOADER_CONTROL_DB_URL", "DAGSTER_PG_URL", "DATALOADER_LAKE_ROOT")
# Every worker host imports the launcher's remote-control command (kill a pool process that ignored
# its termination interrupt: dataloader_defs/deploy/celery_control.py).
WORKER_IMPORTS = "dataloader_defs.deploy.celery_control"
INSTANCE_YAML_ENV = "DATALOADER_CELERY_INSTANCE_YAML"  # another dagster.yaml (tests: shorter polls)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def base_environment() -> dict[str, str]:
    """This shell's environment with the Celery defaults; SystemExit naming what is missing."""
    env = {**DEFAULTS, **{k: v for k, v in os.environ.items() if v}}
    missing = [name for name in REQUIRED if not env.get(name)]
    if missing:
        raise SystemExit(f"celery_hosts: set {', '.join(missing)} (see the README, Scale-out, Celery)")
    if "://" not in env["DATALOADER_LAKE_ROOT"]:
        raise SystemExit(
            "celery_hosts: DATALOADER_LAKE_ROOT must be object storage (s3://…): worker hosts share "
            "no local path (`make s3-start` runs an S3 emulator)"
        )
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _process_folder(root: Path, name: str, base: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """A fresh folder for one process, and its environment pointing only into that folder."""
    folder = root / name
    shutil.rmtree(folder, ignore_errors=True)
    for sub in ("dagster_home", "tmp", "models"):
        (folder / sub).mkdir(parents=True)
    shutil.copyfile(
        os.environ.get(INSTANCE_YAML_ENV) or DEPLOY / "dagster.yaml", folder / "dagster_home" / "dagster.yaml"
    )
    env = {
        **base,
        "DAGSTER_HOME": str(folder / "dagster_home"),
        "TMPDIR": str(folder / "tmp"),
        "DATALOADER_MODELS_DIR": str(folder / "models"),
    }
    return folder, env


def _spawn(folder: Path, command: list[str], env: dict[str, str]) -> int:
    log = (folder / "log").open("ab")
    proc = subprocess.Popen(
        command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return proc.pid


def _wait_for(what: str, ready, folder: Path, pid: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        if not session_members(pid):
            break
        time.sleep(0.5)
    tail = (folder / "log").read_text(errors="replace")[-3000:]
    raise SystemExit(f"celery_hosts: {what} did not start (log {folder / 'log'}):\n{tail}")


def start(root: Path, hosts: int, concurrency: int) -> dict[str, object]:
    """Start the code server, the N worker hosts and the daemon; returns the layout (cluster.json)."""
    base = base_environment()
    if (root / "cluster.json").exists():
        stop(root)
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    layout: dict[str, object] = {"code_server_port": port, "processes": {}}
    processes: dict[str, dict[str, object]] = layout["processes"]  # type: ignore[assignment]

    def record(name: str, folder: Path, pid: int) -> None:
        processes[name] = {"session": pid, "folder": str(folder)}
        (root / "cluster.json").write_text(json.dumps(layout, indent=1))

    folder, env = _process_folder(root, "code-server", base)
    # The code location builds from the control-table state in Dagster's storage (every process
    # reads it there): write the current rows as a version before the code server first loads.
    with (folder / "log").open("ab") as log:  # stdout stays the layout JSON alone
        subprocess.run(
            [sys.executable, "-m", "dataloader_defs.state", "refresh"],
            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, check=True,
        )  # fmt: skip
    pid = _spawn(folder, [str(BIN / "dagster"), "code-server", "start", "-m", "dataloader_defs.definitions",
                          "--location-name", "dataloader_defs", "-h", "127.0.0.1", "-p", str(port)], env)  # fmt: skip
    record("code-server", folder, pid)
    _wait_for("the code server", lambda: _answers(port), folder, pid)

    for number in range(1, hosts + 1):
        name = f"host{number}"
        folder, env = _process_folder(root, name, base)
        pid = _spawn(folder, [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                              "-y", str(DEPLOY / "worker.yaml"), "-n", name, "-i", WORKER_IMPORTS, "--",
                              f"--concurrency={concurrency}", "--pool=prefork"], env)  # fmt: skip
        record(name, folder, pid)
    for number in range(1, hosts + 1):
        name = f"host{number}"
        folder = Path(processes[name]["folder"])  # type: ignore[arg-type]
        log = folder / "log"
        _wait_for(name, lambda log=log: b" ready." in log.read_bytes(), folder, processes[name]["session"])  # type: ignore[arg-type]

    folder, env = _process_folder(root, "daemon", base)
    env.update(DATALOADER_CODE_SERVER_HOST="127.0.0.1", DATALOADER_CODE_SERVER_PORT=str(port))
    pid = _spawn(folder, [str(BIN / "dagster-daemon"), "run", "-w", str(DEPLOY / "workspace.yaml")], env)
    record("daemon", folder, pid)
    return layout


def _layout(root: Path) -> dict[str, dict[str, object]]:
    path = root / "cluster.json"
    return json.loads(path.read_text())["processes"] if path.exists() else {}


def stop(root: Path) -> int:
    """Stop every process of the deployment (the daemon first, so it launches nothing new)."""
    processes = _layout(root)
    order = sorted(processes, key=lambda name: (name != "daemon", name == "code-server", name))
    left = stop_sessions([int(processes[name]["session"]) for name in order])  # type: ignore[arg-type]
    if left:
        print(f"celery_hosts: processes survived SIGKILL: {left}", file=sys.stderr)
        return 1
    (root / "cluster.json").unlink(missing_ok=True)
    print(f"stopped {len(processes)} process sessions under {root}" if processes else "nothing to stop")
    return 0


def kill(root: Path, name: str) -> int:
    """SIGKILL every process of one host at once, as a machine that loses power."""
    processes = _layout(root)
    if name not in processes:
        raise SystemExit(f"celery_hosts: no process named {name} under {root}")
    signal_sessions([int(processes[name]["session"])], 9)  # type: ignore[arg-type]
    return 0


def status(root: Path) -> int:
    for name, entry in _layout(root).items():
        print(f"{name}: {len(session_members(int(entry['session'])))} process(es), {entry['folder']}")  # type: ignore[arg-type]
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("verb", choices=("start", "stop", "status", "kill"))
    parser.add_argument("host", nargs="?", help="kill: the host to kill (host1, host2, …)")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2, help="runs one host executes at a time")
    args = parser.parse_args(argv)
    if args.verb == "start":
        layout = start(args.root.resolve(), args.hosts, args.concurrency)
        print(json.dumps(layout, indent=1))
        return 0
    if args.verb == "kill":
        return kill(args.root.resolve(), args.host or "")
    return stop(args.root.resolve()) if args.verb == "stop" else status(args.root.resolve())


if __name__ == "__main__":
    raise SystemExit(main())
