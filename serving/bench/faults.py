"""`python -m serving.bench.faults`: the server under faults and hostile clients, in figures.

Each scenario starts a fresh server (`python -m serving`, 2 workers) and reports counts:
requests lost at SIGTERM under keep-alive load, the time to replace a killed worker,
429/504 under overload on each runtime, slow header senders closed, and memory over a soak.
The README's reliability section prints its output. Needs wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from serving.bench.wrk import BODY, LUA, PATH, run_wrk

CLIENTS = 32


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def workers(self) -> dict[int, int]:
        return {int(s): int(p) for s, p in re.findall(r"Worker (\d+) spawned \(pid (\d+)\)", self.text())}

    def serving(self, slot: int, pid: int) -> bool:
        return f"Worker {slot} (pid {pid}) serving" in self.text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server(model_root: Path, **settings: str) -> Iterator[Running]:
    port = _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "TWINSERVE_HOST": "127.0.0.1",
        "TWINSERVE_MODEL_ROOT": str(model_root),
        "TWINSERVE_WORKERS": "2",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        **settings,
    }
    log = Path(tempfile.mkdtemp(prefix="twinserve-faults-")) / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "serving"], env=env, stdout=sink, stderr=sink)
    running = Running(process, f"http://127.0.0.1:{port}", log)
    try:
        _wait_serving(running)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def _wait_serving(running: Running) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise SystemExit(f"error: server exited:\n{running.text()}")
        workers = running.workers()
        if len(workers) == 2 and all(running.serving(s, p) for s, p in workers.items()):
            return
        time.sleep(0.1)
    raise SystemExit("error: server not serving within 120 s")


def _hammer(url: str, stop: threading.Event, tally: Counter[str]) -> None:
    """One keep-alive client: POST until told to stop or refused, counting every outcome."""
    with httpx.Client(base_url=url, timeout=30) as http:
        while not stop.is_set():
            try:
                response = http.post(PATH, content=BODY, headers={"content-type": "application/json"})
            except httpx.ConnectError:
                tally["refused (nothing sent)"] += 1
                return
            except httpx.HTTPError:
                tally["lost (sent, no answer)"] += 1
                return
            tally[str(response.status_code)] += 1
            if response.headers.get("connection") == "close":
                tally["answered with Connection: close"] += 1


def _clients(url: str, count: int, stop: threading.Event, tally: Counter[str]) -> list[threading.Thread]:
    threads = [threading.Thread(target=_hammer, args=(url, stop, tally)) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def sigterm_under_load(model_root: Path, drain: float) -> dict[str, object]:
    tally: Counter[str] = Counter()
    with server(model_root, TWINSERVE_RUNTIME="litert", TWINSERVE_DRAIN_SECONDS=str(drain)) as running:
        threads = _clients(running.url, CLIENTS, threading.Event(), tally)
        time.sleep(2)
        running.process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=120)
        code = running.process.wait(timeout=60)
    return {"keep-alive clients": CLIENTS, "drain seconds": drain, "exit code": code, **tally}


def killed_worker(model_root: Path, runtime: str) -> dict[str, object]:
    tally: Counter[str] = Counter()
    stop = threading.Event()
    with server(model_root, TWINSERVE_RUNTIME=runtime, TWINSERVE_DRAIN_SECONDS="0") as running:
        threads = _clients(running.url, 8, stop, tally)
        time.sleep(1)
        victim = running.workers()[0]
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        while (pid := running.workers()[0]) == victim or not running.serving(0, pid):
            time.sleep(0.01)
        replaced = time.monotonic() - killed
        time.sleep(1)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    return {"runtime": runtime, "replacement serving after s": round(replaced, 2), **tally}


def _statuses(log: str) -> Counter[str]:
    lines = (json.loads(line) for line in log.splitlines() if line.startswith("{"))
    return Counter(str(line["status"]) for line in lines if line["path"] == PATH)


def overload(model_root: Path, runtime: str, seconds: int, script: Path) -> dict[str, object]:
    settings = {"TWINSERVE_MAX_CONCURRENCY": "1", "TWINSERVE_TIMEOUT_SECONDS": "0.001"}
    with server(model_root, TWINSERVE_RUNTIME=runtime, TWINSERVE_DRAIN_SECONDS="0", **settings) as running:
        rps, _, p99, _ = run_wrk(running.url, 64, seconds, script)
        statuses = _statuses(running.text())
    return {"runtime": runtime, "connections": 64, **settings, "requests/s": round(rps), "p99 ms": p99,
            **{f"status {k}": v for k, v in sorted(statuses.items())}}  # fmt: skip


def slow_clients(model_root: Path, count: int, seconds: int, script: Path) -> dict[str, object]:
    """`count` connections sending their headers at one byte per second, with normal load beside them."""
    settings = {
        "TWINSERVE_RUNTIME": "litert",
        "TWINSERVE_READ_TIMEOUT_SECONDS": "2",
        "TWINSERVE_DRAIN_SECONDS": "0",
    }
    with server(model_root, **settings) as running:
        port = int(running.url.rsplit(":", 1)[1])
        sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        closed = threading.Event()
        feeder = threading.Thread(target=_drip, args=(sockets, closed))
        feeder.start()
        rps, _, p99, _ = run_wrk(running.url, 32, seconds, script)
        closed.set()
        feeder.join()
        open_left = sum(_still_open(sock) for sock in sockets)
    return {"slow connections": count, "read timeout s": 2, "closed by the server": count - open_left,
            "still open": open_left, "requests/s beside them": round(rps), "p99 ms": p99}  # fmt: skip


def _drip(sockets: list[socket.socket], done: threading.Event) -> None:
    request = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    for byte in range(len(request)):
        for sock in sockets:
            with suppress(OSError):
                sock.sendall(request[byte : byte + 1])
        if done.wait(1.0):
            return


def _still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        return True  # nothing to read and no FIN: open
    except OSError:
        return False
    finally:
        sock.close()
    return False


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def soak(model_root: Path, seconds: int, script: Path) -> dict[str, object]:
    settings = {
        "TWINSERVE_RUNTIME": "litert",
        "TWINSERVE_ACCESS_LOG": "false",
        "TWINSERVE_DRAIN_SECONDS": "0",
    }
    with server(model_root, **settings) as running:
        pids = running.workers()
        run_wrk(running.url, 32, 5, script)
        before = {s: _rss_mib(p) for s, p in pids.items()}
        rps, _, p99, errors = run_wrk(running.url, 32, seconds, script)
        after = {s: _rss_mib(p) for s, p in pids.items()}
    return {"seconds": seconds, "requests": round(rps * seconds), "errors": errors, "p99 ms": p99,
            **{f"worker {s} RSS MiB": f"{before[s]:.0f} -> {after[s]:.0f}" for s in pids}}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-root", type=Path, required=True)
    parser.add_argument("--seconds", type=int, default=10, help="each wrk run")
    parser.add_argument("--soak-seconds", type=int, default=60)
    parser.add_argument("--slow-clients", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "post.lua"
        script.write_text(LUA)
        report = {
            "SIGTERM under load": [sigterm_under_load(args.model_root, 3)],
            "a worker killed (-9)": [killed_worker(args.model_root, r) for r in ("litert", "tensorflow")],
            "overload": [
                overload(args.model_root, r, args.seconds, script) for r in ("litert", "tensorflow")
            ],
            "slow header senders": [slow_clients(args.model_root, args.slow_clients, args.seconds, script)],
            "soak": [soak(args.model_root, args.soak_seconds, script)],
        }
    for title, rows in report.items():
        print(f"\n{title}:")
        for row in rows:
            print("- " + ", ".join(f"{k}: {v}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
