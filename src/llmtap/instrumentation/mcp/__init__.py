"""MCP (``mcp`` Python SDK 1.10 to 2.x) instrumentation: client requests and server handling
as spans of one trace, after the MCP semantic conventions (v1.41, ``docs/gen-ai/mcp.md``).

Client: every request of ``ClientSession`` is a CLIENT span ``{mcp.method.name} {target}``
(``tools/call get_weather``, ``tools/list``, ``resources/read``, ``prompts/get greet``) with
``mcp.method.name``, ``jsonrpc.request.id``, ``mcp.resource.uri``, ``mcp.protocol.version`` (2.x);
a tool call adds ``gen_ai.operation.name`` ``execute_tool`` and ``gen_ai.tool.name``, its
arguments and result with content capture on, and ``error.type`` ``tool_error`` for a result
with ``isError`` (a JSON-RPC error: its code, in ``rpc.response.status_code`` too). A tool
call made inside an ``execute_tool`` span of the same tool (an agent framework's) makes no
span of its own: the MCP attributes go on that span, as the MCP conventions ask.

Server: the SDK's ``OpenTelemetryMiddleware`` SERVER span, parented on the trace context the
client put in ``params._meta`` (see ``_server``), made through llmtap with the tool call's
content. The SDK's own send span is merged into the client span (see ``_client``), so each
request has one span on each side. mcp 1.x has neither the middleware nor the propagation:
there llmtap does both (see ``_legacy``).

Notifications either way and the requests a server sends its client (sampling, elicitation,
roots): a CLIENT span where they are sent, a SERVER span continuing it where they are
handled, over JSON-RPC in mcp 2.x (see ``_peer``); mcp 1.x traces the client's requests only.
"""

from __future__ import annotations

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation.mcp._client import send_request_wrapper, send_span_wrapper
from llmtap.instrumentation.mcp._legacy import (
    client_send_wrapper,
    handle_request_wrapper,
    respond_wrapper,
)
from llmtap.instrumentation.mcp._peer import notify_wrapper, received_wrapper
from llmtap.instrumentation.mcp._server import middleware_wrapper, server_span_wrapper


class McpInstrumentor(SdkInstrumentor):
    """Traces MCP client requests and server handling, one trace across processes."""

    # 1.10: the oldest release checked (the dev extra's floor); 2.x traces itself (see above)
    dependencies = ("mcp >= 1.10, < 3",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        wrap = self.patcher.wrap
        wrap("mcp.client.session", "ClientSession.send_request", send_request_wrapper(telemetry))
        wrap("mcp.shared.jsonrpc_dispatcher", "otel_span", send_span_wrapper(telemetry))
        # mcp 2.x: notifications either way, what the server sends its client (see _peer)
        dispatcher = "JSONRPCDispatcher.notify"
        wrap("mcp.shared.jsonrpc_dispatcher", dispatcher, notify_wrapper(telemetry))
        wrap("mcp.client.session", "ClientSession._on_request", received_wrapper(telemetry))
        wrap("mcp.client.session", "ClientSession._on_notify", received_wrapper(telemetry))
        wrap("mcp.server._otel", "otel_span", server_span_wrapper(telemetry))
        wrap("mcp.server._otel", "OpenTelemetryMiddleware.__call__", middleware_wrapper(telemetry))
        # mcp 1.x: no tracing of its own (modules and methods that 2.x does not have)
        wrap("mcp.shared.session", "BaseSession.send_request", client_send_wrapper(telemetry))
        wrap("mcp.shared.session", "RequestResponder.respond", respond_wrapper(telemetry))
        wrap(
            "mcp.server.lowlevel.server",
            "Server._handle_request",
            handle_request_wrapper(telemetry),
        )
