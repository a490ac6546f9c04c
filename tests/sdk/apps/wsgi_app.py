"""A WSGI app for gunicorn: each request is one unit of work; answers {"pid", "unit"}."""

from __future__ import annotations

import json
import os
import time
from urllib.parse import parse_qs

import appkit

appkit.setup("gunicorn-app")
appkit.startup_span(str(os.getpid()))
_client = None


def application(environ, start_response):
    global _client
    if _client is None:
        _client = appkit.openai_client()
    unit = parse_qs(environ.get("QUERY_STRING", "")).get("unit", ["?"])[0]
    pid = appkit.work(_client, unit)
    time.sleep(0.05)  # keeps this worker busy, so the next connections go to the others
    body = json.dumps({"pid": pid, "unit": unit}).encode()
    headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
    start_response("200 OK", headers)
    return [body]
