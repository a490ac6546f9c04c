"""Point the OpenAI and Anthropic SDKs of this process at a loopback model server unless a
real provider key is set: what the examples and the demo use to run offline."""

from __future__ import annotations

import atexit
import os

from .server import DevServer

_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")


def offline_unless_keyed(environ: dict[str, str] | None = None) -> DevServer | None:
    """Start a :class:`DevServer` and set ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` and
    ``ANTHROPIC_BASE_URL``/``ANTHROPIC_API_KEY`` to it, so SDK clients created afterwards
    use it; the server stops at exit. When either provider key is already set, change
    nothing and return None: the real providers are used."""
    env = os.environ if environ is None else environ
    if any(env.get(key) for key in _KEYS):
        return None
    server = DevServer().start()
    atexit.register(server.stop)
    env["OPENAI_BASE_URL"] = server.openai_base_url
    env["OPENAI_API_KEY"] = "offline"
    env["ANTHROPIC_BASE_URL"] = server.anthropic_base_url
    env["ANTHROPIC_API_KEY"] = "offline"
    return server
