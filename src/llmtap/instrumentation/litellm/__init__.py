"""LiteLLM instrumentation: ``completion``, ``text_completion``, ``embedding`` (sync and async,
streams included) and the ``Router``'s ``completion`` / ``embedding`` endpoints.

One span per call, made by llmtap's LiteLLM layer. LiteLLM reaches many providers through
their own SDKs (the ``openai`` SDK for OpenAI and OpenAI-compatible servers, ...), which
llmtap may instrument too: while llmtap's LiteLLM span is current, every llmtap SDK
instrumentation stands aside (the span marks the GenAI call as handled, and the SDK layers
check that mark), so the request LiteLLM makes through the OpenAI SDK is no second ``chat``
span. The LiteLLM span is kept (not the SDK's) because only this layer sees what the app
asked for: the model as the app named it (``openai/gpt-4o-mini``, a Router's model group),
the Router's retries and fallbacks as one call, and the stream the app iterates.

- ``gen_ai.provider.name``: the provider LiteLLM resolves for the call
  (``litellm.get_llm_provider``), as the semconv's well-known name (see ``_providers``). A
  Router call starts with what its model group resolves to and takes the provider and server
  of the deployment each attempt reaches (the last attempt's stays).
- ``gen_ai.request.model``: the model as the app named it; ``gen_ai.response.model``: the
  model the response names.
- LiteLLM's calls inside an instrumented call (``acompletion`` running ``completion``, a
  Router attempt, ``num_retries`` retries, ``fallbacks``) are no spans of their own.
- Streams: the ``CustomStreamWrapper`` the app iterates is proxied (time to first chunk,
  chunks, end exactly once); usage comes from the final chunk when the app asks for it
  (``stream_options={"include_usage": True}``), else it is estimated as for OpenAI streams.
  llmtap never adds ``stream_options`` to a LiteLLM request.
- LiteLLM's own callbacks and OpenTelemetry integration are left as the app set them.
- A Router stream that fails before its first chunk falls back inside the call: one span,
  with the deployment that answered. Were LiteLLM to start a new attempt while the app
  iterates a stream (after the call returned), that attempt would run outside llmtap's span.

LiteLLM fetches its model cost map from the internet when it is imported, unless
``LITELLM_LOCAL_MODEL_COST_MAP=True``; llmtap never needs that map (nor imports LiteLLM: the
patches apply when the app imports it), so the variable can be set freely.
"""

from __future__ import annotations

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation.litellm._calls import adapters, litellm_wrapper

_LITELLM = "litellm"
_RUST_ROUTER = "litellm.router_rust.core"  # litellm >= 1.108: the Router's endpoints live here
_ROUTER = "litellm.router"  # before: methods of Router itself

# (function or method, adapter, async)
_FUNCTIONS = (
    ("completion", "chat", False),
    ("acompletion", "chat", True),
    ("text_completion", "text", False),
    ("atext_completion", "text", True),
    ("embedding", "embedding", False),
    ("aembedding", "embedding", True),
)
_ROUTER_METHODS = (
    ("completion", "router_chat", False),
    ("acompletion", "router_chat", True),
    ("embedding", "router_embedding", False),
    ("aembedding", "router_embedding", True),
)


class LiteLLMInstrumentor(SdkInstrumentor):
    """Turns every LiteLLM call into a GenAI semantic-convention span with metrics."""

    # 1.108 is the first LiteLLM that installs with openai 3.x (earlier ones pin openai < 3);
    # its Router is a Python class, later ones serve the endpoints from ``RustCore``
    dependencies = ("litellm >= 1.108, < 2",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        made = adapters(settings)
        wrap = self.patcher.wrap
        for name, kind, is_async in _FUNCTIONS:
            wrap(_LITELLM, name, litellm_wrapper(telemetry, made[kind], is_async=is_async))
        for name, kind, is_async in _ROUTER_METHODS:
            wrapper = litellm_wrapper(telemetry, made[kind], is_async=is_async)
            wrap(_RUST_ROUTER, f"RustCore.{name}", wrapper)
            wrap(_ROUTER, f"Router.{name}", wrapper)
