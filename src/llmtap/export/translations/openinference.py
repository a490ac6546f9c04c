"""``openinference``: llmtap's spans in the names Arize Phoenix reads (OpenInference's
semantic conventions).

* ``openinference.span.kind``: ``LLM`` (chat, text completion, generate content),
  ``EMBEDDING``, ``RETRIEVER``, ``RERANKER``, ``TOOL``, ``AGENT``, ``GUARDRAIL`` (a
  ``guardrail`` step), ``EVALUATOR`` (an ``evaluate {name}`` verdict or feedback span), else
  ``CHAIN`` (workflows and every other span);
* ``input.value``/``output.value`` with ``input.mime_type``/``output.mime_type``
  (``application/json`` for JSON, else ``text/plain``): messages, tool arguments and
  results, queries and documents, verdicts; a root span that has none (a workflow) gets its
  trace's first input and last output, so Phoenix's trace list shows them;
* model calls and embeddings: ``llm.model_name``, ``llm.provider``,
  ``llm.token_count.prompt``/``completion``/``total`` and their cache and reasoning details,
  ``llm.cost.total``/``prompt``/``completion`` from ``llmtap.cost.*``, and the messages as
  ``llm.input_messages.<i>.message.role``/``content`` (and ``llm.output_messages``);
* tools: ``tool.name``, ``tool.description``; retrievals and reranks: their documents as
  ``retrieval.documents.<i>.document.id``/``score``/``content``
  (``reranker.output_documents`` for a rerank);
* ``metadata`` (JSON) from ``llmtap.metadata.*`` and ``llmtap.feature``,
  ``llm.prompt_template.version`` from ``llmtap.prompt.version``;
* the resource's ``openinference.project.name``: the destination's ``project``, else the
  service name (Phoenix files the spans under that project).

``session.id`` and ``user.id`` have the same names in both conventions already.
"""

from __future__ import annotations

import json
from typing import Any, Final

from llmtap import semconv
from llmtap.export.translations._base import Translation, TranslationOptions
from llmtap.export.translations._io import TraceIO, Value, is_verdict
from llmtap.pipeline.span import SpanData

NAME: Final = "openinference"
DESCRIPTION: Final = (
    "Arize Phoenix (OpenInference): span kinds, input/output values, llm.* model, tokens, "
    "cost and messages, documents, and the project (openinference.project.name)"
)

SPAN_KIND: Final = "openinference.span.kind"
PROJECT_NAME: Final = "openinference.project.name"
INPUT_VALUE, INPUT_MIME = "input.value", "input.mime_type"
OUTPUT_VALUE, OUTPUT_MIME = "output.value", "output.mime_type"
#: messages and documents flattened, at most
MAX_ITEMS: Final = 64

_KIND_OF_OPERATION = {
    **dict.fromkeys(semconv.INFERENCE_OPERATIONS, "LLM"),
    semconv.OP_EMBEDDINGS: "EMBEDDING",
    semconv.OP_RETRIEVAL: "RETRIEVER",
    "rerank": "RERANKER",
    semconv.OP_EXECUTE_TOOL: "TOOL",
    semconv.OP_INVOKE_AGENT: "AGENT",
    semconv.OP_CREATE_AGENT: "AGENT",
    semconv.OP_INVOKE_WORKFLOW: "CHAIN",
}
_KIND_OF_STEP = {"rerank": "RERANKER", "guardrail": "GUARDRAIL"}
#: gen_ai.provider.name -> OpenInference's llm.provider, where they differ
_PROVIDERS = {
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "mistral_ai": "mistralai",
    "x_ai": "xai",
}
_TOKENS = (
    (semconv.USAGE_INPUT_TOKENS, "llm.token_count.prompt"),
    (semconv.USAGE_OUTPUT_TOKENS, "llm.token_count.completion"),
    (semconv.USAGE_CACHE_READ_INPUT_TOKENS, "llm.token_count.prompt_details.cache_read"),
    (semconv.USAGE_CACHE_CREATION_INPUT_TOKENS, "llm.token_count.prompt_details.cache_write"),
    (semconv.USAGE_REASONING_OUTPUT_TOKENS, "llm.token_count.completion_details.reasoning"),
)
_PROMPT_COSTS = (
    semconv.LLMTAP_COST_INPUT,
    semconv.LLMTAP_COST_CACHED_INPUT,
    semconv.LLMTAP_COST_CACHE_WRITE,
)
_COMPLETION_COSTS = (semconv.LLMTAP_COST_OUTPUT, semconv.LLMTAP_COST_REASONING)


def span_kind(span: SpanData) -> str:
    if is_verdict(span):
        return "EVALUATOR"
    attrs = span.attributes
    kind = _KIND_OF_OPERATION.get(attrs.get(semconv.OPERATION))  # type: ignore[arg-type]
    if kind is None:
        kind = _KIND_OF_STEP.get(attrs.get(semconv.LLMTAP_STEP_KIND), "CHAIN")  # type: ignore[arg-type]
    return kind


class OpenInference(Translation):
    name = NAME
    uses_io = True

    def __init__(self, project: str | None = None, service_name: str | None = None) -> None:
        self.project = project
        self.service_name = service_name

    def span(self, span: SpanData, trace: TraceIO) -> None:
        attrs = span.attributes
        kind = span_kind(span)
        attrs.setdefault(SPAN_KIND, kind)
        root = not span.parent_span_id
        _put_value(attrs, INPUT_VALUE, INPUT_MIME, trace.trace_input if root else trace.input)
        _put_value(attrs, OUTPUT_VALUE, OUTPUT_MIME, trace.trace_output if root else trace.output)
        if kind in ("LLM", "EMBEDDING"):
            _model(attrs, kind)
            _tokens(attrs)
            _costs(attrs)
        if kind == "LLM":
            _messages(attrs, "llm.input_messages", attrs.get(semconv.INPUT_MESSAGES))
            _messages(attrs, "llm.output_messages", attrs.get(semconv.OUTPUT_MESSAGES))
        elif kind == "TOOL":
            _copy(attrs, semconv.TOOL_NAME, "tool.name")
            _copy(attrs, semconv.TOOL_DESCRIPTION, "tool.description")
        elif kind in ("RETRIEVER", "RERANKER"):
            prefix = "retrieval.documents" if kind == "RETRIEVER" else "reranker.output_documents"
            _documents(attrs, prefix, attrs.get(semconv.RETRIEVAL_DOCUMENTS))
            if kind == "RERANKER":
                _copy(attrs, semconv.RETRIEVAL_QUERY_TEXT, "reranker.query")
                _copy(attrs, semconv.REQUEST_MODEL, "reranker.model_name")
        _metadata(attrs)

    def resource(self, attributes: dict[str, Any]) -> None:
        if self.project:
            attributes[PROJECT_NAME] = self.project
        elif PROJECT_NAME not in attributes:  # else the app named its project itself
            name = attributes.get("service.name") or self.service_name
            if name:
                attributes[PROJECT_NAME] = str(name)


def _put_value(attrs: dict, key: str, mime_key: str, value: Value | None) -> None:
    if value is not None and key not in attrs:
        attrs[key] = value.text
        attrs[mime_key] = value.mime


def _copy(attrs: dict, source: str, target: str) -> None:
    value = attrs.get(source)
    if value is not None and target not in attrs:
        attrs[target] = value


def _model(attrs: dict, kind: str) -> None:
    model = attrs.get(semconv.RESPONSE_MODEL) or attrs.get(semconv.REQUEST_MODEL)
    if isinstance(model, str) and model:
        attrs.setdefault("llm.model_name", model)
        if kind == "EMBEDDING":
            attrs.setdefault("embedding.model_name", model)
    provider = attrs.get(semconv.PROVIDER)
    if isinstance(provider, str) and provider and provider != "_OTHER":
        attrs.setdefault("llm.provider", _PROVIDERS.get(provider, provider))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _tokens(attrs: dict) -> None:
    for source, target in _TOKENS:
        count = _number(attrs.get(source))
        if count is not None:
            attrs.setdefault(target, int(count))
    prompt = _number(attrs.get(semconv.USAGE_INPUT_TOKENS))
    completion = _number(attrs.get(semconv.USAGE_OUTPUT_TOKENS))
    if prompt is not None or completion is not None:
        attrs.setdefault("llm.token_count.total", int((prompt or 0) + (completion or 0)))


def _costs(attrs: dict) -> None:
    total = _number(attrs.get(semconv.LLMTAP_COST_TOTAL))
    if total is None:
        total = _number(attrs.get(semconv.USAGE_COST))
    if total is None:
        return
    attrs.setdefault("llm.cost.total", float(total))
    for keys, target in (
        (_PROMPT_COSTS, "llm.cost.prompt"),
        (_COMPLETION_COSTS, "llm.cost.completion"),
    ):
        parts = [p for p in (_number(attrs.get(k)) for k in keys) if p is not None]
        if parts:
            attrs.setdefault(target, round(float(sum(parts)), 12))


def _parsed(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _messages(attrs: dict, prefix: str, value: Any) -> None:
    messages = _parsed(value)
    if not isinstance(messages, (list, tuple)) or f"{prefix}.0.message.role" in attrs:
        return
    for i, message in enumerate(messages[:MAX_ITEMS]):
        if not isinstance(message, dict):
            continue
        base = f"{prefix}.{i}.message"
        if isinstance(message.get("role"), str):
            attrs[f"{base}.role"] = message["role"]
        texts, calls = _parts(message.get("parts"))
        if texts:
            attrs[f"{base}.content"] = "\n".join(texts)
        for j, call in enumerate(calls[:MAX_ITEMS]):
            call_base = f"{base}.tool_calls.{j}.tool_call"
            if call.get("id") is not None:
                attrs[f"{call_base}.id"] = str(call["id"])
            if isinstance(call.get("name"), str):
                attrs[f"{call_base}.function.name"] = call["name"]
            arguments = call.get("arguments")
            if arguments is not None:
                attrs[f"{call_base}.function.arguments"] = _text(arguments)


def _parts(parts: Any) -> tuple[list[str], list[dict]]:
    texts: list[str] = []
    calls: list[dict] = []
    for part in parts if isinstance(parts, (list, tuple)) else ():
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("content"), str):
            texts.append(part["content"])
        elif kind == "tool_call":
            calls.append(part)
        elif kind == "tool_call_response" and part.get("response") is not None:
            texts.append(_text(part["response"]))
    return texts, calls


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _documents(attrs: dict, prefix: str, value: Any) -> None:
    documents = _parsed(value)
    if not isinstance(documents, (list, tuple)) or f"{prefix}.0.document.id" in attrs:
        return
    for i, doc in enumerate(documents[:MAX_ITEMS]):
        base = f"{prefix}.{i}.document"
        if isinstance(doc, str):
            attrs[f"{base}.content"] = doc
            continue
        if not isinstance(doc, dict):
            continue
        if doc.get("id") is not None:
            attrs[f"{base}.id"] = str(doc["id"])
        score = _number(doc.get("score"))
        if score is not None:
            attrs[f"{base}.score"] = float(score)
        if isinstance(doc.get("content"), str):
            attrs[f"{base}.content"] = doc["content"]


def _metadata(attrs: dict) -> None:
    prefix = semconv.LLMTAP_METADATA_PREFIX
    found = {k[len(prefix) :]: v for k, v in attrs.items() if k.startswith(prefix)}
    feature = attrs.get(semconv.LLMTAP_FEATURE)
    if feature is not None:
        found.setdefault("feature", feature)
    if found and "metadata" not in attrs:
        attrs["metadata"] = json.dumps(found, ensure_ascii=False, default=str)
    _copy(attrs, semconv.LLMTAP_PROMPT_VERSION, "llm.prompt_template.version")


def create(options: TranslationOptions) -> Translation:
    return OpenInference(options.project, options.service_name)
