"""Amazon Bedrock instrumentation: the ``bedrock-runtime`` client of botocore (and boto3).

Instrumented operations: ``converse``, ``converse_stream`` (the ``stream`` EventStream of
the response is proxied as the app sees it: span ends when it is exhausted, fails, is
closed or dropped; time to first chunk; usage from the ``metadata`` event),
``invoke_model`` (the response ``body`` is read for telemetry and replaced by an equal
``StreamingBody`` over the same bytes, so the app reads it whole) and
``invoke_model_with_response_stream`` (``chunk`` events decoded by the vendor's
translator). InvokeModel bodies are read per vendor, chosen by the model id (Anthropic,
Amazon Nova, Titan text and embeddings, Meta Llama, Mistral, Cohere command and embed;
the body's shape when the id names no vendor, e.g. a provisioned-model ARN). Model ids
are recorded in ``gen_ai.request.model`` exactly as given (region prefixes, ARNs).
``gen_ai.response.id`` is the vendor's own id when the body carries one, else the AWS
request id. ``error.type`` is the AWS error code (``ThrottlingException``,
``ModelStreamErrorException``).

Where: the client class botocore builds for ``bedrock-runtime`` gets its own
``_make_api_call`` (see ``_hook``), so clients created after ``instrument()`` are
instrumented, clients of every other AWS service cost nothing, and whatever wraps
``BaseClient._make_api_call`` runs inside llmtap's span. aiobotocore is not instrumented.

With OpenTelemetry's botocore instrumentation (``opentelemetry-instrumentation-botocore``)
active too, there is one GenAI span per call, llmtap's: while llmtap handles a Bedrock
call, that instrumentation's extension lookup answers its plain AWS extension, so its span
stays an ordinary AWS span (``BedrockRuntime.Converse``, ``rpc.*`` attributes, no
``gen_ai.*``, no GenAI metrics or events) and is a child of llmtap's span. Bedrock calls
llmtap does not handle (other operations, or while llmtap is off) keep its Bedrock
extension. Nothing here reaches the network or AWS credentials.
"""

from __future__ import annotations

from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry
from llmtap.instrumentation.bedrock._calls import ConverseAdapter, InvokeAdapter
from llmtap.instrumentation.bedrock._hook import client_class_wrapper, plain_botocore_span

_CLIENT = "botocore.client"
_OTEL_REGISTRY = "opentelemetry.instrumentation.botocore.extensions.registry"
_OTEL_BOTOCORE = "opentelemetry.instrumentation.botocore"


class BedrockInstrumentor(SdkInstrumentor):
    """Turns every Bedrock runtime model call into a GenAI semantic-convention span."""

    dependencies = ("botocore >= 1.35.0",)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        adapters = {
            "Converse": ConverseAdapter(settings),
            "ConverseStream": ConverseAdapter(settings, streaming=True),
            "InvokeModel": InvokeAdapter(settings),
            "InvokeModelWithResponseStream": InvokeAdapter(settings, streaming=True),
        }
        wrap = self.patcher.wrap
        wrap(
            _CLIENT, "ClientCreator._create_client_class", client_class_wrapper(telemetry, adapters)
        )
        # one GenAI span with OpenTelemetry's botocore instrumentation: its current releases
        # look extensions up in a registry, older ones in a module function
        wrap(_OTEL_REGISTRY, "ExtensionRegistry.get_extension", plain_botocore_span)
        wrap(_OTEL_BOTOCORE, "_find_extension", plain_botocore_span)
