"""The LangGraph graphs an app runs, by name (no LangChain import here)."""

from __future__ import annotations

import threading


class Graphs:
    """Names of the LangGraph graphs the app ran, and whether each is an agent."""

    def __init__(self) -> None:
        self._agents: dict[str, bool] = {}
        self._lock = threading.Lock()

    def add(self, name: str, agent: bool) -> None:
        with self._lock:
            self._agents[name] = self._agents.get(name, False) or agent

    def kind(self, name: str) -> str | None:
        agent = self._agents.get(name)
        if agent is None:
            return None
        return "agent" if agent else "workflow"
