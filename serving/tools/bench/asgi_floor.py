"""The ASGI floor: the least uvicorn (httptools, uvloop, as many workers as the server) does per
request, an app answering a constant JSON body. What any app on uvicorn's ASGI cycle can reach: the
gap between this and `floor` is uvicorn's, the gap between this and our server is ours."""

from __future__ import annotations

import os
from typing import Any

import uvicorn

from serving.cpus import available_cpus
from serving.tools.bench.floor import BODY

HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    uvicorn.run(
        "serving.tools.bench.asgi_floor:app", host="127.0.0.1", port=int(os.environ["PORT"]),
        workers=available_cpus(),
        loop="uvloop", http="httptools", lifespan="off", access_log=False, log_level="warning",
    )  # fmt: skip
