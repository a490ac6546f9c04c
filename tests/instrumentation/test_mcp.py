"""MCP instrumentation against the real ``mcp`` SDK: a client and a FastMCP server (MCPServer
in mcp 2.x) in one process over the in-memory JSON-RPC transport (``mcp.shared.memory``), and
in two processes over stdio with the server exporting to an OTLP receiver. The same tests run
on mcp 1.x, which llmtap propagates and traces itself, and on 2.x, which does both and whose
spans llmtap makes.

Each request is one CLIENT span on the client and one SERVER span on the server, named
``{mcp.method.name} {target}`` (MCP semconv v1.41), the server's span a child of the
client's through the W3C trace context carried in the request's ``params._meta``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from support.otlp_receiver import OtlpReceiver

pytest.importorskip("mcp", reason="the mcp SDK is not installed")

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared import exceptions

V2 = importlib.util.find_spec("mcp.server.mcpserver") is not None
# mcp 2.0 raises a peer's error answer after its send span has ended (the dispatcher's
# send_request checks the outcome outside the span), so that span cannot see the failure
ERROR_AFTER_SEND_SPAN = importlib.metadata.version("mcp").startswith("2.0.")
MCPError = getattr(exceptions, "MCPError", None) or exceptions.McpError
# the spans of the handshake: 2.x traces the server's initialize and the initialized
# notification on both sides too
HANDSHAKE = 4 if V2 else 1

TARGET = "llmtap.instrumentation.mcp:McpInstrumentor"
REPO = Path(__file__).resolve().parents[2]

SERVER_CODE = '''
try:
    from mcp.server.mcpserver import Context, MCPServer as FastMCP
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import Context, FastMCP


def build():
    server = FastMCP("calc")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @server.tool()
    def boom(x: str) -> str:
        """Always fails."""
        raise ValueError("no " + x)

    @server.tool()
    def traceparent(ctx: Context) -> str:
        """The traceparent the request carried in params._meta."""
        meta = ctx.request_context.meta
        meta = meta.model_dump() if hasattr(meta, "model_dump") else dict(meta or {})
        return str(meta.get("traceparent"))

    @server.resource("notes://today")
    def today() -> str:
        return "buy milk"

    @server.prompt()
    def greet(name: str) -> str:
        return f"Hello {name}"

    return server
'''

STDIO_MAIN = """
import signal
import sys

import llmtap
from llmtap.instrumentation.mcp import McpInstrumentor

# mcp 1.x's stdio client ends the server with SIGTERM: export what was recorded first
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
configured = llmtap.configure()
McpInstrumentor().instrument()
try:
    build().run("stdio")
finally:
    configured.shutdown()
"""


def build_server() -> Any:
    scope: dict[str, Any] = {}
    # the same server in-process and in the stdio subprocess (annotations evaluated: Context)
    exec(compile(SERVER_CODE, "server.py", "exec", dont_inherit=True), scope)
    return scope["build"]()


@asynccontextmanager
async def connected(server: Any) -> AsyncIterator[Any]:
    """A client session with ``server`` over mcp.shared.memory's streams (JSON-RPC)."""
    if V2:
        from mcp import Client

        async with Client(server, mode="legacy") as session:
            yield session
    else:
        from mcp.shared.memory import create_connected_server_and_client_session

        async with create_connected_server_and_client_session(server._mcp_server) as session:
            yield session


async def in_memory(scenario: Callable[[Any], Awaitable[Any]]) -> Any:
    async with connected(build_server()) as session:
        return await scenario(session)


def field(result: Any, name: str) -> Any:
    """A result field by its 2.x name (``is_error``) or its 1.x one (``isError``)."""
    if hasattr(result, name):
        return getattr(result, name)
    head, *rest = name.split("_")
    return getattr(result, head + "".join(word.title() for word in rest))


def spans_named(exporter: Any, name: str) -> dict[SpanKind, Any]:
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    by_kind = {s.kind: s for s in found}
    assert len(by_kind) == len(found), f"more than one {name} span of a kind: {found}"
    return by_kind


def assert_child(server: Any, client: Any) -> None:
    assert server.context.trace_id == client.context.trace_id
    assert server.parent is not None and server.parent.span_id == client.context.span_id
    assert server.parent.is_remote


async def test_tool_call_is_one_client_and_one_server_span(instrument: Any, span_exporter: Any):
    instrument(TARGET)

    async def scenario(session: Any) -> Any:
        return await session.call_tool("add", {"a": 2, "b": 3})

    result = await in_memory(scenario)
    assert field(result, "structured_content") == {"result": 5}
    spans = spans_named(span_exporter, "tools/call add")
    assert set(spans) == {SpanKind.CLIENT, SpanKind.SERVER}
    client, server = spans[SpanKind.CLIENT], spans[SpanKind.SERVER]
    assert client.parent is None
    assert_child(server, client)
    for span in (client, server):
        assert span.instrumentation_scope.name == "llmtap"
        assert span.status.status_code is StatusCode.UNSET
        attrs = dict(span.attributes)
        assert attrs["gen_ai.operation.name"] == "execute_tool"
        assert attrs["gen_ai.tool.name"] == "add"
        assert attrs["mcp.method.name"] == "tools/call"
        assert attrs["jsonrpc.request.id"] == client.attributes["jsonrpc.request.id"]
        if V2:  # 1.x does not say which version the session speaks
            assert attrs["mcp.protocol.version"] == "2025-11-25"
        assert json.loads(attrs["gen_ai.tool.call.arguments"]) == {"a": 2, "b": 3}
        assert json.loads(attrs["gen_ai.tool.call.result"]) == {"result": 5}
        assert "gen_ai.provider.name" not in attrs and "error.type" not in attrs
    # the handshake, and the tools/list that call_tool sends after the call to learn the
    # tool's output schema: a client and a server span each (the initialized notification
    # too); mcp 1.x answers initialize in its session, not in a handler, and traces no
    # notification
    names = sorted((s.name, s.kind.name) for s in span_exporter.get_finished_spans())
    handshake = [("initialize", "CLIENT")]
    if V2:
        handshake += [
            ("initialize", "SERVER"),
            ("notifications/initialized", "CLIENT"),
            ("notifications/initialized", "SERVER"),
        ]
    assert names == [
        *handshake,
        ("tools/call add", "CLIENT"),
        ("tools/call add", "SERVER"),
        ("tools/list", "CLIENT"),
        ("tools/list", "SERVER"),
    ]


async def test_trace_context_travels_in_params_meta(instrument: Any, span_exporter: Any):
    instrument(TARGET)

    async def scenario(session: Any) -> Any:
        return await session.call_tool("traceparent", {})

    result = await in_memory(scenario)
    client = spans_named(span_exporter, "tools/call traceparent")[SpanKind.CLIENT]
    ctx = client.context
    version, trace_id, parent_id, _flags = result.content[0].text.split("-")
    assert (version, trace_id, parent_id) == ("00", f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")


async def test_list_read_and_prompt_requests(instrument: Any, span_exporter: Any):
    instrument(TARGET)

    async def scenario(session: Any) -> Any:
        tools = await session.list_tools()
        text = await session.read_resource("notes://today")
        prompt = await session.get_prompt("greet", {"name": "Ann"})
        return tools, text, prompt

    tools, text, prompt = await in_memory(scenario)
    assert [t.name for t in tools.tools] == ["add", "boom", "traceparent"]
    assert text.contents[0].text == "buy milk"
    assert prompt.messages[0].content.text == "Hello Ann"
    for name, method, extra in (
        ("tools/list", "tools/list", {}),
        ("resources/read", "resources/read", {"mcp.resource.uri": "notes://today"}),
        ("prompts/get greet", "prompts/get", {"gen_ai.prompt.name": "greet"}),
    ):
        spans = spans_named(span_exporter, name)
        client, server = spans[SpanKind.CLIENT], spans[SpanKind.SERVER]
        assert_child(server, client)
        assert client.attributes["mcp.method.name"] == server.attributes["mcp.method.name"]
        assert client.attributes["mcp.method.name"] == method
        for key, value in extra.items():
            assert client.attributes[key] == value
        for span in (client, server):
            # gen_ai.operation.name only on tool calls (MCP semconv)
            assert "gen_ai.operation.name" not in span.attributes
            assert "gen_ai.tool.call.result" not in span.attributes


async def test_tool_error(instrument: Any, span_exporter: Any):
    instrument(TARGET)

    async def scenario(session: Any) -> Any:
        return await session.call_tool("boom", {"x": "luck"})

    result = await in_memory(scenario)
    assert field(result, "is_error") is True
    spans = spans_named(span_exporter, "tools/call boom")
    client, server = spans[SpanKind.CLIENT], spans[SpanKind.SERVER]
    assert_child(server, client)
    for span in (client, server):
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "tool_error"
        assert json.loads(span.attributes["gen_ai.tool.call.arguments"]) == {"x": "luck"}
        assert "gen_ai.tool.call.result" not in span.attributes  # only for a successful call


async def test_json_rpc_error(instrument: Any, span_exporter: Any):
    instrument(TARGET)

    async def scenario(session: Any) -> Any:
        with pytest.raises(MCPError) as caught:
            await session.read_resource("notes://missing")
        return caught.value

    error = await in_memory(scenario)
    code = str(error.error.code)
    spans = spans_named(span_exporter, "resources/read")
    client, server = spans[SpanKind.CLIENT], spans[SpanKind.SERVER]
    assert_child(server, client)
    for span in (client, server):
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == code
        assert span.attributes["rpc.response.status_code"] == code


async def test_no_content_without_capture(instrument: Any, span_exporter: Any):
    instrument(TARGET, capture="no_content")

    async def scenario(session: Any) -> Any:
        return await session.call_tool("add", {"a": 1, "b": 1})

    await in_memory(scenario)
    spans = spans_named(span_exporter, "tools/call add")
    assert set(spans) == {SpanKind.CLIENT, SpanKind.SERVER}
    for span in spans.values():
        assert span.attributes["gen_ai.tool.name"] == "add"
        assert "gen_ai.tool.call.arguments" not in span.attributes
        assert "gen_ai.tool.call.result" not in span.attributes


PEER_CODE = """
from mcp import types
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError


def build():
    server = MCPServer("peer")

    @server.tool()
    async def ask(question: str, ctx: Context) -> str:
        \"\"\"Asks the client's model, telling the client first.\"\"\"
        await ctx.info("asking the client's model")
        text = types.TextContent(type="text", text=question)
        message = types.SamplingMessage(role="user", content=text)
        try:
            result = await ctx.session.create_message([message], max_tokens=10)
        except MCPError as exc:
            return f"declined: {exc}"
        return result.content.text

    return server
"""


# mcp 2.3 warns that sampling and logging are deprecated from the 2026-07-28 protocol on
SEP_2577 = "ignore:The .* capability is deprecated"


def peer_server() -> Any:
    scope: dict[str, Any] = {}
    exec(compile(PEER_CODE, "peer.py", "exec", dont_inherit=True), scope)
    return scope["build"]()


def one_each(exporter: Any, name: str) -> tuple[Any, Any]:
    spans = spans_named(exporter, name)
    assert set(spans) == {SpanKind.CLIENT, SpanKind.SERVER}, name
    return spans[SpanKind.CLIENT], spans[SpanKind.SERVER]


@pytest.mark.skipif(not V2, reason="mcp 1.x: llmtap traces its client's requests only")
@pytest.mark.filterwarnings(SEP_2577)
async def test_server_requests_and_notifications_to_the_client(instrument: Any, span_exporter: Any):
    """A server's sampling request and log notification to its client, sent while it runs
    a tool: on each side a span, the client's handling a child of the server's sending,
    which is a child of the server's tool call; one trace from the client's call."""
    from mcp import Client, types

    instrument(TARGET)
    logged: list[Any] = []

    async def sampling(ctx: Any, params: Any) -> Any:
        text = types.TextContent(type="text", text="42")
        return types.CreateMessageResult(role="assistant", content=text, model="house")

    async def logging_callback(params: Any) -> None:
        logged.append(params.data)

    async with Client(
        peer_server(),
        mode="legacy",
        sampling_callback=sampling,
        logging_callback=logging_callback,
        log_level="info",
    ) as session:
        result = await session.call_tool("ask", {"question": "meaning?"})

    assert result.content[0].text == "42" and logged == ["asking the client's model"]
    call, handler = one_each(span_exporter, "tools/call ask")
    sent, answered = one_each(span_exporter, "sampling/createMessage")
    told, heard = one_each(span_exporter, "notifications/message")
    for outbound in (sent, told):  # sent by the server while its tool runs
        assert outbound.parent.span_id == handler.context.span_id
    assert_child(answered, sent)  # through the trace context in params._meta
    assert_child(heard, told)
    assert {s.context.trace_id for s in (call, sent, answered, told, heard)} == {
        call.context.trace_id
    }
    assert sent.attributes["mcp.method.name"] == "sampling/createMessage"
    assert answered.attributes["jsonrpc.request.id"] == sent.attributes["jsonrpc.request.id"]
    assert answered.attributes["mcp.protocol.version"] == "2025-11-25"
    assert "jsonrpc.request.id" not in told.attributes  # a notification has none
    for span in (sent, answered, told, heard):
        assert span.instrumentation_scope.name == "llmtap"
        assert span.status.status_code is StatusCode.UNSET
        assert "gen_ai.operation.name" not in span.attributes
    # the client's initialized notification: the server's span continues the client's
    initialized, received = one_each(span_exporter, "notifications/initialized")
    assert_child(received, initialized)


@pytest.mark.skipif(not V2, reason="mcp 1.x: llmtap traces its client's requests only")
@pytest.mark.filterwarnings(SEP_2577)
async def test_a_client_callback_that_declines_fails_both_spans(
    instrument: Any, span_exporter: Any
):
    from mcp import Client, types

    instrument(TARGET)

    async def sampling(ctx: Any, params: Any) -> Any:
        return types.ErrorData(code=-32603, message="no model here")  # the callback declines

    async with Client(peer_server(), mode="legacy", sampling_callback=sampling) as session:
        result = await session.call_tool("ask", {"question": "meaning?"})
    assert result.content[0].text == "declined: no model here"
    sent, answered = one_each(span_exporter, "sampling/createMessage")
    assert_child(answered, sent)
    for span in (answered,) if ERROR_AFTER_SEND_SPAN else (sent, answered):
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "-32603"


@pytest.mark.skipif(not V2, reason="mcp 1.x has no in-process path without JSON-RPC")
async def test_in_process_server_without_json_rpc(instrument: Any, span_exporter: Any):
    """``Client(server)``'s default in-process path (no JSON-RPC framing, no ``_meta``): the
    server span still continues the client's trace, through the running context."""
    from mcp import Client

    instrument(TARGET)
    async with Client(build_server()) as session:
        await session.call_tool("add", {"a": 4, "b": 4})
    spans = spans_named(span_exporter, "tools/call add")
    client, server = spans[SpanKind.CLIENT], spans[SpanKind.SERVER]
    assert server.context.trace_id == client.context.trace_id
    assert server.parent.span_id == client.context.span_id


async def test_a_tool_call_already_traced_gets_the_mcp_attributes(
    instrument: Any, span_exporter: Any, tracer_provider: Any
):
    """An agent framework's ``execute_tool add`` span around the MCP call: no second tool
    span on the client (MCP semconv); that span carries the MCP attributes and the server's
    span is its child. A different tool inside it still gets its own client span."""
    from llmtap.config import Settings
    from llmtap.instrumentation._framework import step_invocation
    from llmtap.instrumentation._invocation import Telemetry

    instrument(TARGET)
    framework = Telemetry(Settings(), tracer_provider)

    async def scenario(session: Any) -> Any:
        await session.list_tools()
        with framework.step(step_invocation("tool", "add")):
            await session.call_tool("add", {"a": 1, "b": 2})
            await session.call_tool("traceparent", {})

    await in_memory(scenario)
    outer = spans_named(span_exporter, "execute_tool add")[SpanKind.INTERNAL]
    assert set(spans_named(span_exporter, "tools/call add")) == {SpanKind.SERVER}
    server = spans_named(span_exporter, "tools/call add")[SpanKind.SERVER]
    assert_child(server, outer)
    assert outer.attributes["mcp.method.name"] == "tools/call"
    assert outer.attributes["jsonrpc.request.id"] == server.attributes["jsonrpc.request.id"]
    assert "gen_ai.tool.call.result" not in outer.attributes  # the framework's to record
    other = spans_named(span_exporter, "tools/call traceparent")
    assert other[SpanKind.CLIENT].parent.span_id == outer.context.span_id
    assert_child(other[SpanKind.SERVER], other[SpanKind.CLIENT])


def _outcome(result: Any) -> Any:
    if isinstance(result, BaseException):
        return type(result).__name__, str(result)
    return result.model_dump(mode="json")


async def _everything(session: Any) -> list[Any]:
    out: list[Any] = []
    for call in (
        lambda: session.list_tools(),
        lambda: session.call_tool("add", {"a": 20, "b": 22}),
        lambda: session.call_tool("boom", {"x": "y"}),
        lambda: session.read_resource("notes://today"),
        lambda: session.read_resource("notes://missing"),
        lambda: session.get_prompt("greet", {"name": "Bo"}),
    ):
        try:
            out.append(_outcome(await call()))
        except MCPError as exc:
            out.append(_outcome(exc))
    return out


async def test_results_are_the_same_with_llmtap(instrument: Any, span_exporter: Any):
    plain = await in_memory(_everything)
    assert span_exporter.get_finished_spans() == ()
    instrument(TARGET)
    traced = await in_memory(_everything)
    assert traced == plain
    assert len(span_exporter.get_finished_spans()) == 2 * 6 + HANDSHAKE


def test_client_and_server_in_two_processes_form_one_trace(
    tmp_path: Path, instrument: Any, span_exporter: Any, otlp_receiver: OtlpReceiver
):
    import anyio

    instrument(TARGET)
    script = tmp_path / "server.py"
    script.write_text(SERVER_CODE + STDIO_MAIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTAP_"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.grpc_endpoint,
        OTEL_EXPORTER_OTLP_INSECURE="true",
        OTEL_SERVICE_NAME="mcp-server",
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_ONLY",
        PYTHONPATH=str(REPO / "src"),
    )
    params = StdioServerParameters(command=sys.executable, args=[str(script)], env=env)

    async def run() -> Any:
        if V2:
            from mcp import Client

            async with Client(stdio_client(params)) as session:
                return await session.call_tool("add", {"a": 40, "b": 2})
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return await session.call_tool("add", {"a": 40, "b": 2})

    result = anyio.run(run)
    assert field(result, "structured_content") == {"result": 42}
    client = spans_named(span_exporter, "tools/call add")[SpanKind.CLIENT]
    received = otlp_receiver.wait_for(
        lambda: [s for s in otlp_receiver.spans("tools/call add")],
        message="the server's tools/call span",
    )
    assert len(received) == 1
    server = received[0]
    assert server.kind == "SERVER"
    assert server.scope_name == "llmtap"
    assert server.resource["service.name"] == "mcp-server"
    assert server.trace_id == f"{client.context.trace_id:032x}"
    assert server.parent_span_id == f"{client.context.span_id:016x}"
    assert server.attributes["gen_ai.operation.name"] == "execute_tool"
    assert server.attributes["gen_ai.tool.name"] == "add"
    assert server.attributes["jsonrpc.request.id"] == client.attributes["jsonrpc.request.id"]
    assert json.loads(server.attributes["gen_ai.tool.call.arguments"]) == {"a": 40, "b": 2}
    assert json.loads(server.attributes["gen_ai.tool.call.result"]) == {"result": 42}
