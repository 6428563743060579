"""`python -m serving.tools.bench.faults`: the server under faults and hostile clients, in figures.

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

from serving.tools.bench.cold_start import free_port
from serving.tools.bench.workload import Workload, add_model_arguments, from_arguments
from serving.tools.bench.wrk import lua, run_wrk

CLIENTS = 32
JSON = {"content-type": "application/json"}


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


def runtimes(workload: Workload) -> list[str]:
    """LiteRT when the model has a .tflite, and TensorFlow always."""
    return ["litert", "tensorflow"] if (workload.artifact / "model.tflite").is_file() else ["tensorflow"]


def fastest(workload: Workload) -> str:
    return runtimes(workload)[0]


@contextmanager
def server(workload: Workload, **settings: str) -> Iterator[Running]:
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "TWINSERVE_HOST": "127.0.0.1",
        "TWINSERVE_MODEL_ROOT": str(workload.artifact.parents[1]),
        "TWINSERVE_MODEL_NAME": workload.name,
        "TWINSERVE_WORKERS": "2",
        "TWINSERVE_METRICS_PORT": "0",
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


def _hammer(url: str, workload: Workload, stop: threading.Event, tally: Counter[str]) -> None:
    """One keep-alive client: POST until told to stop or refused, counting every outcome."""
    with httpx.Client(base_url=url, timeout=30) as http:
        while not stop.is_set():
            try:
                response = http.post(
                    workload.path, content=workload.body, headers={"content-type": "application/json"}
                )
            except httpx.ConnectError:
                tally["refused (nothing sent)"] += 1
                return
            except httpx.HTTPError:
                tally["lost (sent, no answer)"] += 1
                return
            tally[str(response.status_code)] += 1
            if response.headers.get("connection") == "close":
                tally["answered with Connection: close"] += 1


def _clients(
    url: str, workload: Workload, count: int, stop: threading.Event, tally: Counter[str]
) -> list[threading.Thread]:
    threads = [threading.Thread(target=_hammer, args=(url, workload, stop, tally)) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def sigterm_under_load(workload: Workload, drain: float) -> dict[str, object]:
    tally: Counter[str] = Counter()
    with server(workload, TWINSERVE_RUNTIME=fastest(workload), TWINSERVE_DRAIN_SECONDS=str(drain)) as running:
        threads = _clients(running.url, workload, CLIENTS, threading.Event(), tally)
        time.sleep(2)
        running.process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=120)
        code = running.process.wait(timeout=60)
    return {"keep-alive clients": CLIENTS, "drain seconds": drain, "exit code": code, **tally}


def killed_worker(workload: Workload, runtime: str) -> dict[str, object]:
    tally: Counter[str] = Counter()
    stop = threading.Event()
    with server(workload, TWINSERVE_RUNTIME=runtime, TWINSERVE_DRAIN_SECONDS="0") as running:
        threads = _clients(running.url, workload, 8, stop, tally)
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


def _statuses(log: str, path: str) -> Counter[str]:
    lines = (json.loads(line) for line in log.splitlines() if line.startswith("{"))
    return Counter(str(line["status"]) for line in lines if line["path"] == path)


def overload(workload: Workload, runtime: str, seconds: int, script: Path) -> dict[str, object]:
    settings = {"TWINSERVE_MAX_CONCURRENCY": "1", "TWINSERVE_TIMEOUT_SECONDS": "0.001"}
    with server(workload, TWINSERVE_RUNTIME=runtime, TWINSERVE_DRAIN_SECONDS="0", **settings) as running:
        figures = run_wrk(running.url, 64, seconds, script, workload.path)
        rps, p99 = figures.requests_per_second, figures.p99_ms
        statuses = _statuses(running.text(), workload.path)
    return {"runtime": runtime, "connections": 64, **settings, "requests/s": round(rps), "p99 ms": p99,
            **{f"status {k}": v for k, v in sorted(statuses.items())}}  # fmt: skip


def slow_clients(workload: Workload, count: int, seconds: int, script: Path) -> dict[str, object]:
    """`count` connections sending their headers at one byte per second, with normal load beside them."""
    settings = {
        "TWINSERVE_RUNTIME": fastest(workload),
        "TWINSERVE_READ_TIMEOUT_SECONDS": "2",
        "TWINSERVE_DRAIN_SECONDS": "0",
    }
    with server(workload, **settings) as running:
        port = int(running.url.rsplit(":", 1)[1])
        sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        closed = threading.Event()
        feeder = threading.Thread(target=_drip, args=(sockets, closed))
        feeder.start()
        figures = run_wrk(running.url, 32, seconds, script, workload.path)
        rps, p99 = figures.requests_per_second, figures.p99_ms
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


def soak(workload: Workload, seconds: int, script: Path) -> dict[str, object]:
    settings = {
        "TWINSERVE_RUNTIME": fastest(workload),
        "TWINSERVE_ACCESS_LOG": "false",
        "TWINSERVE_DRAIN_SECONDS": "0",
    }
    with server(workload, **settings) as running:
        pids = running.workers()
        run_wrk(running.url, 32, 5, script, workload.path)
        before = {s: _rss_mib(p) for s, p in pids.items()}
        figures = run_wrk(running.url, 32, seconds, script, workload.path)
        rps, p99, errors = figures.requests_per_second, figures.p99_ms, figures.errors
        after = {s: _rss_mib(p) for s, p in pids.items()}
    return {"seconds": seconds, "requests": round(rps * seconds), "errors": errors, "p99 ms": p99,
            **{f"worker {s} RSS MiB": f"{before[s]:.0f} -> {after[s]:.0f}" for s in pids}}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--seconds", type=int, default=10, help="each wrk run")
    parser.add_argument("--soak-seconds", type=int, default=60)
    parser.add_argument("--slow-clients", type=int, default=300)
    args = parser.parse_args()
    workload = from_arguments(args)
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "post.lua"
        script.write_text(lua(workload.body.decode()))
        report = {
            "SIGTERM under load": [sigterm_under_load(workload, 3)],
            "a worker killed (-9)": [killed_worker(workload, r) for r in runtimes(workload)],
            "overload": [overload(workload, r, args.seconds, script) for r in runtimes(workload)],
            "slow header senders": [slow_clients(workload, args.slow_clients, args.seconds, script)],
            "soak": [soak(workload, args.soak_seconds, script)],
        }
    for title, rows in report.items():
        print(f"\n{title}:")
        for row in rows:
            print("- " + ", ".join(f"{k}: {v}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
