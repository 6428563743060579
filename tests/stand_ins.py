"""Stand-ins for commands a runner has and this machine lacks."""

from __future__ import annotations

import sys
from pathlib import Path


def port_forwarding_kubectl(bin_dir: Path, record: Path, upstream_port: int) -> Path:
    """A `kubectl` whose `port-forward -n NS TARGET LOCAL:REMOTE` relays LOCAL to a local server's
    `upstream_port` (whatever TARGET and REMOTE say) and writes its arguments to `record`."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(
        f"#!{sys.executable}\n"
        "import socket, sys, threading, pathlib\n"
        f"pathlib.Path({str(record)!r}).write_text(' '.join(sys.argv[1:]))\n"
        "local = int(sys.argv[-1].split(':')[0])\n"
        "listener = socket.create_server(('127.0.0.1', local))\n"
        "def pipe(a, b):\n"
        "    while data := a.recv(65536):\n"
        "        b.sendall(data)\n"
        "    b.close()\n"
        "while True:\n"
        "    client, _ = listener.accept()\n"
        f"    upstream = socket.create_connection(('127.0.0.1', {upstream_port}))\n"
        "    threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()\n"
        "    threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()\n"
    )
    kubectl.chmod(0o755)
    return kubectl
