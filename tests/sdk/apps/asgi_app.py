"""An ASGI app for uvicorn: each request is one unit of work; answers {"pid", "unit"}.

uvicorn's workers are spawned (each sets llmtap up on its own) and, after their graceful
shutdown, end by re-raising SIGTERM, which runs no atexit hook: the app flushes in its
lifespan shutdown, as an app under uvicorn must for any OpenTelemetry SDK."""

from __future__ import annotations

import asyncio
import json
import os
from urllib.parse import parse_qs

import appkit

appkit.setup("uvicorn-app")
appkit.startup_span(str(os.getpid()))
_client = None


async def app(scope, receive, send):
    global _client
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                appkit.flush()  # uvicorn then ends the worker by SIGTERM: no atexit hook
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if _client is None:
        _client = appkit.openai_client(asynchronous=True)
    unit = parse_qs(scope.get("query_string", b"").decode()).get("unit", ["?"])[0]
    pid = await appkit.awork(_client, unit)
    await asyncio.sleep(0.05)
    body = json.dumps({"pid": pid, "unit": unit}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
