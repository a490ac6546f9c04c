"""Attribute, metric and event names: GenAI semantic conventions v1.41 and llmtap extensions."""

from typing import Final

# GenAI semconv v1.41: spans
OPERATION: Final = "gen_ai.operation.name"
PROVIDER: Final = "gen_ai.provider.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
REQUEST_TOP_P: Final = "gen_ai.request.top_p"
REQUEST_TOP_K: Final = "gen_ai.request.top_k"
REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
REQUEST_SEED: Final = "gen_ai.request.seed"
REQUEST_STREAM: Final = "gen_ai.request.stream"
RESPONSE_ID: Final = "gen_ai.response.id"
RESPONSE_MODEL: Final = "gen_ai.response.model"
RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
TOKEN_TYPE: Final = "gen_ai.token.type"
CONVERSATION_ID: Final = "gen_ai.conversation.id"
OUTPUT_TYPE: Final = "gen_ai.output.type"
EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"
AGENT_ID: Final = "gen_ai.agent.id"
AGENT_NAME: Final = "gen_ai.agent.name"
AGENT_DESCRIPTION: Final = "gen_ai.agent.description"
AGENT_VERSION: Final = "gen_ai.agent.version"
WORKFLOW_NAME: Final = "gen_ai.workflow.name"
TOOL_NAME: Final = "gen_ai.tool.name"
TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
TOOL_DESCRIPTION: Final = "gen_ai.tool.description"
TOOL_TYPE: Final = "gen_ai.tool.type"
TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"
DATA_SOURCE_ID: Final = "gen_ai.data_source.id"
RETRIEVAL_DOCUMENTS: Final = "gen_ai.retrieval.documents"
RETRIEVAL_QUERY_TEXT: Final = "gen_ai.retrieval.query.text"
SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
INPUT_MESSAGES: Final = "gen_ai.input.messages"
OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
PROMPT_NAME: Final = "gen_ai.prompt.name"
EVALUATION_NAME: Final = "gen_ai.evaluation.name"
EVALUATION_SCORE_VALUE: Final = "gen_ai.evaluation.score.value"
EVALUATION_SCORE_LABEL: Final = "gen_ai.evaluation.score.label"
EVALUATION_EXPLANATION: Final = "gen_ai.evaluation.explanation"

OPENAI_API_TYPE: Final = "openai.api.type"
OPENAI_REQUEST_SERVICE_TIER: Final = "openai.request.service_tier"
OPENAI_RESPONSE_SERVICE_TIER: Final = "openai.response.service_tier"
OPENAI_RESPONSE_SYSTEM_FINGERPRINT: Final = "openai.response.system_fingerprint"

# MCP semconv v1.41 (model/mcp): client and server spans of MCP requests
MCP_METHOD_NAME: Final = "mcp.method.name"
MCP_PROTOCOL_VERSION: Final = "mcp.protocol.version"
MCP_RESOURCE_URI: Final = "mcp.resource.uri"
JSONRPC_REQUEST_ID: Final = "jsonrpc.request.id"
RPC_RESPONSE_STATUS_CODE: Final = "rpc.response.status_code"

SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"

# Operation names
OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_GENERATE_CONTENT: Final = "generate_content"
OP_EMBEDDINGS: Final = "embeddings"
OP_RETRIEVAL: Final = "retrieval"
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_CREATE_AGENT: Final = "create_agent"
OP_INVOKE_WORKFLOW: Final = "invoke_workflow"
INFERENCE_OPERATIONS: Final = frozenset({OP_CHAT, OP_TEXT_COMPLETION, OP_GENERATE_CONTENT})

# Metrics
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
METRIC_TIME_PER_OUTPUT_CHUNK: Final = "gen_ai.client.operation.time_per_output_chunk"
TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
CHUNK_BUCKETS: Final = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
)  # fmt: skip

# Events
EVENT_INFERENCE_DETAILS: Final = "gen_ai.client.inference.operation.details"
EVENT_EVALUATION_RESULT: Final = "gen_ai.evaluation.result"

# llmtap extensions (registered in semconv/)
LLMTAP_USAGE_ESTIMATED: Final = "llmtap.usage.estimated"
LLMTAP_USAGE_ESTIMATE_METHOD: Final = "llmtap.usage.estimate_method"
LLMTAP_USAGE_SEARCH_UNITS: Final = "llmtap.usage.search_units"
LLMTAP_CONTENT_DROPPED_MESSAGES: Final = "llmtap.content.dropped_messages"
LLMTAP_CONTENT_TRUNCATED: Final = "llmtap.content.truncated"
LLMTAP_CONTENT_BLOBS_OMITTED: Final = "llmtap.content.blobs_omitted"
LLMTAP_STREAM_END: Final = "llmtap.stream.end"
LLMTAP_FEATURE: Final = "llmtap.feature"
LLMTAP_PROMPT_VERSION: Final = "llmtap.prompt.version"
LLMTAP_METADATA_PREFIX: Final = "llmtap.metadata."
LLMTAP_STEP_KIND: Final = "llmtap.step.kind"
LLMTAP_GUARDRAIL_TRIGGERED: Final = "llmtap.guardrail.triggered"
LLMTAP_RESPONSE_REFUSAL: Final = "llmtap.response.refusal"
# Evaluation results (judge, rules) and user feedback
LLMTAP_EVALUATION_SOURCE: Final = "llmtap.evaluation.source"
LLMTAP_EVALUATION_PASSED: Final = "llmtap.evaluation.passed"
# the evaluated span, named on a verdict span (hex ids, as backends show them)
LLMTAP_EVALUATION_TARGET_TRACE_ID: Final = "llmtap.evaluation.target.trace_id"
LLMTAP_EVALUATION_TARGET_SPAN_ID: Final = "llmtap.evaluation.target.span_id"
LLMTAP_FEEDBACK_LABEL: Final = "llmtap.feedback.label"
LLMTAP_FEEDBACK_RESOLVED: Final = "llmtap.feedback.resolved"
# Cost: the total is llmtap.cost.total. gen_ai.usage.cost (not in semconv v1.41) is the name
# older llmtap apps, OpenLIT and other SDKs put it under: read on input as a total, and
# written only at export, for destinations that read it (the cost_alias translation)
LLMTAP_COST_TOTAL: Final = "llmtap.cost.total"
USAGE_COST: Final = "gen_ai.usage.cost"
#: the names a span's cost total may have, the preferred one first
COST_TOTAL_NAMES: Final = (LLMTAP_COST_TOTAL, USAGE_COST)
LLMTAP_COST_INPUT: Final = "llmtap.cost.input"
LLMTAP_COST_CACHED_INPUT: Final = "llmtap.cost.cached_input"
LLMTAP_COST_CACHE_WRITE: Final = "llmtap.cost.cache_write"
LLMTAP_COST_OUTPUT: Final = "llmtap.cost.output"
LLMTAP_COST_REASONING: Final = "llmtap.cost.reasoning"
LLMTAP_COST_CURRENCY: Final = "llmtap.cost.currency"
LLMTAP_COST_PRICE_SOURCE: Final = "llmtap.cost.price_source"
LLMTAP_COST_PRICE_MODEL: Final = "llmtap.cost.price_model"
LLMTAP_COST_UNKNOWN_MODEL: Final = "llmtap.cost.unknown_model"
LLMTAP_COST_ESTIMATED: Final = "llmtap.cost.estimated"
METRIC_LLMTAP_COST: Final = "llmtap.cost"
METRIC_LLMTAP_COST_UNPRICED: Final = "llmtap.cost.unpriced"
# Redaction: a total, a count per type (llmtap.redaction.<type>), and the fail-closed flag
LLMTAP_REDACTION_COUNT: Final = "llmtap.redaction.count"
LLMTAP_REDACTION_FAILED: Final = "llmtap.redaction.failed"
# an HMAC binding the redaction marks to the span's ids, under a key shared with the service
LLMTAP_REDACTION_SEAL: Final = "llmtap.redaction.seal"
# values replaced unscanned because they were over the redaction budget (size or time)
LLMTAP_REDACTION_OVER_BUDGET: Final = "llmtap.redaction.over_budget"
LLMTAP_REDACTION_TYPE_PREFIX: Final = "llmtap.redaction."
# gen_ai.* names outside the v1.41 registry that llmtap reads, and writes only when a
# destination asks for them (export translations)
GEN_AI_EXTENSIONS: Final = frozenset({USAGE_COST})
USER_ID: Final = "user.id"
SESSION_ID: Final = "session.id"
