"""What every test app shares: llmtap set up the way the test asked, and a unit of work that
makes two spans (a workflow step around a GenAI call), stamped with the pid that did it.

``APP_MODE=configure`` calls ``llmtap.configure()`` against ``APP_OTLP_ENDPOINT``;
``APP_MODE=instrument`` leaves the set-up to ``opentelemetry-instrument`` (llmtap's distro).
The model calls go to the dev server at ``OPENAI_BASE_URL``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import llmtap

SPANS_PER_UNIT = 2  # invoke_workflow handle + chat gpt-4o-mini


def setup(service_name: str) -> Any:
    # llmtap's and the exporters' warnings on stderr, whatever handlers the server or the
    # SDK put on the root logger (the tests read them)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(name)s [{os.getpid()}] %(message)s"))
    for name in ("llmtap", "opentelemetry"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(os.environ.get("APP_LOG_LEVEL", "WARNING"))
        logger.propagate = False
    if os.environ.get("APP_MODE", "configure") == "configure":
        return llmtap.configure(
            service_name=service_name, otlp_endpoint=os.environ["APP_OTLP_ENDPOINT"]
        )
    return None


def openai_client(asynchronous: bool = False) -> Any:
    import openai

    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return cls(base_url=os.environ["OPENAI_BASE_URL"], api_key="sk-test", max_retries=0)


def _request(unit: str) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": f"unit {unit}"}],
    }


def work(client: Any, unit: str) -> int:
    """One unit of work: its spans carry ``llmtap.metadata.unit`` and ``llmtap.metadata.pid``."""
    pid = os.getpid()
    with llmtap.context(metadata={"unit": unit, "pid": pid}), llmtap.workflow("handle"):
        client.chat.completions.create(**_request(unit))
    return pid


async def awork(client: Any, unit: str) -> int:
    pid = os.getpid()
    with llmtap.context(metadata={"unit": unit, "pid": pid}), llmtap.workflow("handle"):
        await client.chat.completions.create(**_request(unit))
    return pid


def startup_span(label: str) -> None:
    """One span made while the app loads (before a pre-fork server forks, with --preload)."""
    stamp = {"unit": f"startup-{label}", "pid": os.getpid()}
    with llmtap.context(metadata=stamp), llmtap.step("startup", "load"):
        pass


def flush() -> None:
    """Send every span ended so far: what an app does in its shutdown hook when its server
    ends the process by a signal after that hook (uvicorn re-raises SIGTERM once its
    graceful shutdown is done, so no atexit hook runs in its workers)."""
    from opentelemetry import trace

    force_flush = getattr(trace.get_tracer_provider(), "force_flush", None)
    if force_flush is not None:
        force_flush()
