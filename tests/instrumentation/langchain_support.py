"""Helpers of the LangChain / LangGraph tests: the span tree as text, the models and tools."""

from __future__ import annotations

from typing import Any

TARGET = "llmtap.instrumentation.langchain:LangChainInstrumentor"
MODEL = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"


def tree(spans: Any) -> list[str]:
    """Each span as ``"  " * depth + name``, children in start order under their parent."""
    by_parent: dict[Any, list[Any]] = {}
    ids = {s.context.span_id for s in spans}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        by_parent.setdefault(parent if parent in ids else None, []).append(span)
    lines: list[str] = []

    def walk(parent: Any, depth: int) -> None:
        for span in sorted(by_parent.get(parent, []), key=lambda s: s.start_time):
            lines.append("  " * depth + span.name)
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return lines


def one_trace(spans: Any) -> bool:
    return len({s.context.trace_id for s in spans}) == 1


def named(spans: Any, name: str) -> list[Any]:
    return [s for s in spans if s.name == name]


def openai_chat(devserver: Any, model: str = MODEL, **kwargs: Any) -> Any:
    """langchain-openai's ChatOpenAI on the dev server (its own async HTTP client: the one
    langchain-openai shares by default outlives each test's event loop)."""
    import openai
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=model,
        base_url=devserver.openai_base_url,
        api_key="test-key",
        max_retries=0,
        http_async_client=openai.DefaultAsyncHttpxClient(),
        **kwargs,
    )


def anthropic_chat(devserver: Any, **kwargs: Any) -> Any:
    from langchain_anthropic import ChatAnthropic

    return ChatAnthropic(
        model=CLAUDE,
        base_url=devserver.anthropic_base_url,
        api_key="test-key",
        max_retries=0,
        **kwargs,
    )


def weather_tool() -> Any:
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """The weather of a city."""
        return f"sunny in {city}"

    return get_weather
