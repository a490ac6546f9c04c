"""Google GenAI SDK (``google-genai``) instrumentation: Gemini Developer API and Vertex AI.

Wrapped (sync ``client.models`` and async ``client.aio.models``):

- ``Models._generate_content`` / ``_generate_content_stream``: the one HTTP request each
  model call makes. The public ``generate_content`` / ``generate_content_stream`` (and chats'
  ``send_message`` / ``send_message_stream``, which call them) loop over these for automatic
  function calling and automatic continuation, so every model call of such a loop is one
  ``generate_content {model}`` span of its own, under the application's current span.
  A stream's span follows the stream the application iterates (time to first chunk, usage
  of the last chunk) and ends when it is exhausted, fails or is dropped.
- ``Models.embed_content``: one ``embeddings {model}`` span. SDKs that drop the response's
  ``usageMetadata`` when parsing it: ``BaseApiClient.request`` notes it during the call.
- Automatic function calling: an ``execute_tool {function}`` span around each function the
  SDK runs (``_extra_utils.invoke_function_from_dict_args`` and its async twin).

``count_tokens`` and the other methods are left alone. The SDK emits no spans of its own.
``gen_ai.provider.name`` is ``gcp.vertex_ai`` for a client in Vertex AI mode, else
``gcp.gemini``; model ids are recorded without the ``models/`` (or Vertex resource) prefix.
Nothing here reaches the network; the SDK needs no extra option to stay offline beyond a
``base_url`` (and, for Vertex AI, an API key or explicit ``credentials``) of the app's choosing.
"""

from __future__ import annotations

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation._wrap import async_wrapper, sync_wrapper
from llmtap.instrumentation.google_genai._models import (
    EmbedContentAdapter,
    GenerateContentAdapter,
    async_raw_usage_wrapper,
    async_stream_wrapper,
    raw_usage_wrapper,
)
from llmtap.instrumentation.google_genai._tools import (
    async_invoke_wrapper,
    async_responses_wrapper,
    invoke_wrapper,
    responses_wrapper,
)

_MODELS = "google.genai.models"
_EXTRA = "google.genai._extra_utils"
_API_CLIENT = "google.genai._api_client"


class GoogleGenAIInstrumentor(SdkInstrumentor):
    """Turns every google-genai model call into a GenAI semantic-convention span with metrics."""

    # verified: 1.20 (Python 3.10) and 3.6 with the tests; 2.18 with the conformance suite
    dependencies = ("google-genai >= 1.20, < 4",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        wrap = self.patcher.wrap
        calls = GenerateContentAdapter(settings)
        streams = GenerateContentAdapter(settings, streaming=True)
        embeddings = EmbedContentAdapter(settings)
        for cls, wrapper in (("Models", sync_wrapper), ("AsyncModels", async_wrapper)):
            wrap(_MODELS, f"{cls}._generate_content", wrapper(telemetry, calls))
            wrap(_MODELS, f"{cls}.embed_content", wrapper(telemetry, embeddings))
        wrap(_MODELS, "Models._generate_content_stream", sync_wrapper(telemetry, streams))
        wrap(
            _MODELS,
            "AsyncModels._generate_content_stream",
            async_stream_wrapper(telemetry, streams),
        )
        wrap(_API_CLIENT, "BaseApiClient.request", raw_usage_wrapper)
        wrap(_API_CLIENT, "BaseApiClient.async_request", async_raw_usage_wrapper)
        wrap(_EXTRA, "get_function_response_parts", responses_wrapper)
        wrap(_EXTRA, "get_function_response_parts_async", async_responses_wrapper)
        wrap(_EXTRA, "invoke_function_from_dict_args", invoke_wrapper(telemetry))
        wrap(_EXTRA, "invoke_function_from_dict_args_async", async_invoke_wrapper(telemetry))
