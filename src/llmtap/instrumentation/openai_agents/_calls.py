"""The model's tool call ids, for the SDK's function spans (``gen_ai.tool.call.id``).

The SDK's ``FunctionSpanData`` has no call id (name, input, output, MCP data only), and nothing
the trace processor can reach holds the tool call that a function span runs. The model call
before it does: its span data keeps the model's output (the ``Response`` of a response span,
the assistant message or Responses-shaped result of a generation span), with each function
call's ``call_id``, name and arguments, whenever the SDK includes data in its traces
(``trace_include_sensitive_data``, on by default; off, no id is recorded).

The SDK runs a turn's function calls after the model call that made them, starting their spans
in the order of the calls: a function span takes the first pending call of its name made by
its parent's (the agent's) model calls. When it ends with its input (the arguments) known and
another pending call of that name matches them exactly, it takes that one instead (a call the
SDK did not run, rejected or replaced, shifts the order).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any

from llmtap.instrumentation import _parts as parts

Call = tuple[str, str, Any]  # call_id, tool name, arguments (a JSON string, as the model sent)


def _from_items(items: Any) -> list[Call]:
    found: list[Call] = []
    for item in map(parts.as_dict, items or ()):
        if isinstance(item, dict) and item.get("type") == "function_call":
            call_id, name = item.get("call_id"), item.get("name")
            if isinstance(call_id, str) and call_id and isinstance(name, str):
                found.append((call_id, name, item.get("arguments")))
    return found


def _from_message(message: dict[str, Any]) -> list[Call]:
    found: list[Call] = []
    for call in map(parts.as_dict, message.get("tool_calls") or ()):
        if not isinstance(call, dict):
            continue
        function = parts.as_dict(call.get("function"))
        if not isinstance(function, dict):
            continue
        call_id, name = call.get("id"), function.get("name")
        if isinstance(call_id, str) and call_id and isinstance(name, str):
            found.append((call_id, name, function.get("arguments")))
    return found


def made_by(data: Any) -> list[Call]:
    """The function calls a model call's span data says the model made, in its order."""
    if data.type == "response":
        return _from_items(getattr(getattr(data, "response", None), "output", None))
    found: list[Call] = []
    for item in map(parts.as_dict, getattr(data, "output", None) or ()):
        if not isinstance(item, dict):
            continue
        if "output" in item:  # a Responses-shaped result (the SDK's chat completions adapter)
            found += _from_items(item["output"])
        else:
            found += _from_message(item)
    return found


class PendingCalls:
    """Tool calls made by each agent's model calls that no function span has taken yet."""

    def __init__(self) -> None:
        self._pending: dict[Hashable, list[Call]] = {}
        self._lock = threading.Lock()

    def add(self, owner: Hashable, calls: list[Call]) -> None:
        if calls:
            with self._lock:
                self._pending.setdefault(owner, []).extend(calls)

    def take(self, owner: Hashable, name: str) -> Call | None:
        """The first pending call of ``name`` (a function span starting)."""
        with self._lock:
            waiting = self._pending.get(owner, [])
            for index, call in enumerate(waiting):
                if call[1] == name:
                    return waiting.pop(index)
        return None

    def settle(self, owner: Hashable, taken: Call, arguments: Any) -> Call:
        """``taken``, or the pending call of its name whose arguments are exactly the
        function span's input when ``taken``'s are not (``taken`` goes back)."""
        if not isinstance(arguments, str) or taken[2] == arguments:
            return taken
        with self._lock:
            waiting = self._pending.get(owner, [])
            for index, call in enumerate(waiting):
                if call[1] == taken[1] and call[2] == arguments:
                    waiting[index] = taken
                    return call
        return taken

    def forget(self, owner: Hashable) -> None:
        with self._lock:
            self._pending.pop(owner, None)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
