"""LlamaIndex's dispatcher spans and events as GenAI spans.

LlamaIndex opens a dispatcher span around every decorated method (splitters, prompt
programs, synthesizers, workflow steps, ...). Only the runs with a GenAI meaning become spans;
the others are skipped, so their children's spans go under the nearest run that has one:

- a query engine's ``query``/``aquery`` and a chat engine's ``chat`` family: ``invoke_workflow``
  named after the engine class (retrieval, reranking and synthesis coordinated into an answer);
- a retriever's ``retrieve``/``aretrieve``: ``retrieval`` with the query and the documents;
- a node postprocessor's ``postprocess_nodes``: a ``rerank`` step with the documents kept;
- an LLM's chat/complete (and their stream and async forms): the inference span, made current
  so llmtap's instrumentation of the provider SDK underneath merges into it; an LLM call
  inside another (``complete`` running ``chat``) is no second span;
- an embedding model's outermost public method: ``embeddings``;
- a tool's ``call``/``acall``: ``execute_tool``;
- a workflow's ``run``: ``invoke_agent`` for an agent (``FunctionAgent``, ``ReActAgent``, ...),
  ``invoke_workflow`` for any other workflow (``AgentWorkflow`` included).
"""

from __future__ import annotations

import inspect
import json
import threading
import weakref
from collections.abc import Hashable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from llmtap import semconv
from llmtap.instrumentation import _parts
from llmtap.instrumentation._documents import documents_json
from llmtap.instrumentation._framework import OTHER_PROVIDER, RunSpans, step_invocation
from llmtap.instrumentation._invocation import Invocation, Telemetry, log_once

_QUERY = frozenset({"query", "aquery"})
_CHAT_ENGINE = frozenset({"chat", "achat", "stream_chat", "astream_chat"})
_RETRIEVE = frozenset({"retrieve", "aretrieve"})
_POSTPROCESS = frozenset({"_postprocess_nodes", "_apostprocess_nodes"})  # the decorated ones
_LLM_CHAT = frozenset({"chat", "achat", "stream_chat", "astream_chat"})
_LLM_COMPLETE = frozenset({"complete", "acomplete", "stream_complete", "astream_complete"})
_TOOL = frozenset({"call", "acall"})
# a query engine's streamed answers (dataclasses whose generator llmtap follows); a chat
# engine's streamed answer is read by LlamaIndex's own thread and ends with the call
_STREAMED_ANSWERS = frozenset({"StreamingResponse", "AsyncStreamingResponse"})

# module of a LlamaIndex integration -> gen_ai.provider.name
_PROVIDERS = {
    "anthropic": "anthropic",
    "openai": "openai",
    "azure_openai": "azure.ai.openai",
    "ollama": "ollama",
    "mistralai": "mistral_ai",
    "cohere": "cohere",
    "groq": "groq",
    "bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "gemini": "gcp.gemini",
    "google_genai": "gcp.gen_ai",
    "vertex": "gcp.vertex_ai",
    "deepseek": "deepseek",
    "perplexity": "perplexity",
    "together": "together_ai",
    "litellm": "litellm",
}

_KIND_CACHE: dict[type, frozenset[str]] = {}


def _bases(instance: Any) -> frozenset[str]:
    """Names of the LlamaIndex/workflows classes ``instance`` is an instance of."""
    cls = type(instance)
    found = _KIND_CACHE.get(cls)
    if found is None:
        found = frozenset(
            k.__name__ for k in cls.__mro__ if k.__module__.startswith(("llama_index", "workflows"))
        )
        _KIND_CACHE[cls] = found
    return found


def _method(span_id: str) -> str:
    """``Class.method-<uuid4>`` -> ``method``."""
    return span_id[:-37].rpartition(".")[2] if len(span_id) > 37 else ""


def _text(value: Any) -> str | None:
    """A query (string or ``QueryBundle``) or a message as text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    for attr in ("query_str", "content"):
        text = getattr(value, attr, None)
        if isinstance(text, str):
            return text
    return str(value)


def _message(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


def _answer_message(text: str, reason: str = "stop") -> dict[str, Any]:
    """An output message; LlamaIndex's answers (a query's, a workflow's, an agent's) carry no
    finish reason, so one that came back complete finished with "stop"."""
    return {**_message("assistant", text), "finish_reason": reason}


def _messages(messages: Any) -> list[dict[str, Any]]:
    out = []
    for m in messages or ():
        role = getattr(getattr(m, "role", None), "value", None) or "user"
        out.append(_message(str(role), _text(m) or ""))
    return out


def _documents(nodes: Any) -> list[dict[str, Any]]:
    docs = []
    for item in nodes or ():
        node = getattr(item, "node", item)
        doc: dict[str, Any] = {"id": getattr(node, "node_id", "")}
        score = getattr(item, "score", None)
        doc["score"] = float(score) if isinstance(score, (int, float)) else 0.0
        get_content = getattr(node, "get_content", None)
        if callable(get_content):
            doc["content"] = get_content()
        docs.append(doc)
    return docs


def _provider(instance: Any) -> str:
    parts = type(instance).__module__.split(".")
    if len(parts) > 2 and parts[0] == "llama_index" and parts[1] in ("llms", "embeddings"):
        return _PROVIDERS.get(parts[2], parts[2])
    return OTHER_PROVIDER  # a model LlamaIndex itself serves (MockLLM, custom LLMs)


def _model(instance: Any) -> str | None:
    for get in (
        lambda: instance.metadata.model_name,
        lambda: instance.model_name,
        lambda: instance.model,
    ):
        try:
            value = get()
        except Exception:
            continue
        if isinstance(value, str) and value:
            return value
    return None


class _Info:
    """What llmtap remembers of one dispatcher span."""

    __slots__ = ("above", "call_id", "ended", "exited", "instance", "kind", "parent")

    def __init__(self, kind: str | None, parent: Hashable | None, instance: Any) -> None:
        self.kind = kind  # "llm", "embedding", "tool", ... or None for a skipped run
        self.parent = parent
        # the nearest enclosing run that is no skipped one (skipped runs are forgotten as
        # they return, a stream's runs outlive them)
        self.above: Hashable | None = None
        self.instance = instance
        self.call_id: str | None = None  # an agent's tool-calling step: the model's call id
        self.exited = False  # the method returned (a stream may still be running)
        self.ended = False  # the LLM's end event came


class LlamaIndexRuns:
    """Receives the dispatcher's span enter/exit/drop and events; owns the open spans."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self.spans = RunSpans(telemetry)
        self._info: dict[Hashable, _Info] = {}
        self._lock = threading.Lock()

    @property
    def _capture(self) -> bool:
        return self.telemetry.settings.capture.any

    # span enter --------------------------------------------------------------------------

    def enter(
        self, span_id: str, parent_id: str | None, instance: Any, bound: inspect.BoundArguments
    ) -> None:
        if not self.telemetry.enabled:
            return
        kind, inv = self._classify(span_id, parent_id, instance, bound.arguments)
        info = _Info(kind, parent_id, instance)
        info.above = next((r for r, i in self._ancestry(parent_id) if i.kind is not None), None)
        call_id = getattr(bound.arguments.get("ev"), "tool_id", None)
        if isinstance(call_id, str):
            info.call_id = call_id
        with self._lock:
            self._info[span_id] = info
        if inv is None:
            self.spans.skip(span_id, parent_id)
        else:
            # a workflow's run returns a future that ends in a callback, elsewhere: its
            # span is found through the parent ids, never made current
            self.spans.open(span_id, parent_id, inv, attach=kind != "workflow")

    def _classify(
        self, span_id: str, parent_id: str | None, instance: Any, args: dict[str, Any]
    ) -> tuple[str | None, Invocation | None]:
        if instance is None:
            return None, None
        bases, method = _bases(instance), _method(span_id)
        name = type(instance).__name__
        if "BaseLLM" in bases and method in _LLM_CHAT | _LLM_COMPLETE:
            if self._inside(parent_id, "llm"):
                return None, None
            return "llm", self._llm(instance, method)
        if "BaseEmbedding" in bases and not method.startswith("_"):
            if self._inside(parent_id, "embedding"):
                return None, None
            inv = Invocation(semconv.OP_EMBEDDINGS, _provider(instance), _model(instance))
            return "embedding", inv
        if "BaseRetriever" in bases and method in _RETRIEVE:
            return "retrieval", self._with_query(
                step_invocation("retrieval", name), args.get("str_or_query_bundle")
            )
        if "BaseNodePostprocessor" in bases and method in _POSTPROCESS:
            query = args.get("query_bundle") or args.get("query_str")
            return "rerank", self._with_query(step_invocation("rerank", name), query)
        if "BaseTool" in bases and method in _TOOL:
            if self._inside(parent_id, "tool", instance):
                return None, None
            return "tool", self._tool(instance, args, self._call_id(parent_id))
        if "BaseQueryEngine" in bases and method in _QUERY:
            inv = step_invocation("workflow", name)
            self._input(inv, args.get("str_or_query_bundle"))
            return "query", inv
        if "BaseChatEngine" in bases and method in _CHAT_ENGINE:
            inv = step_invocation("workflow", name)
            self._input(inv, args.get("message"))
            return "query", inv
        if "Workflow" in bases and method == "run":
            return "workflow", self._workflow(instance, bases, args)
        return None, None

    def _ancestry(self, run_id: Hashable | None) -> Iterator[tuple[Hashable, _Info]]:
        """``run_id`` and the runs enclosing it, nearest first (those still known)."""
        for _ in range(1000):  # a bound against a cycle
            info = self._info.get(run_id) if run_id is not None else None
            if info is None:
                return
            yield run_id, info
            run_id = info.parent

    def _inside(self, run_id: Hashable | None, kind: str, instance: Any = None) -> bool:
        """Whether a run of ``kind`` (on ``instance`` when given) encloses ``run_id``."""
        return any(
            info.kind == kind and (instance is None or info.instance is instance)
            for _, info in self._ancestry(run_id)
        )

    def _llm(self, instance: Any, method: str) -> Invocation:
        chat = method in _LLM_CHAT or bool(getattr(_safe_metadata(instance), "is_chat_model", 0))
        operation = semconv.OP_CHAT if chat else semconv.OP_TEXT_COMPLETION
        return Invocation(operation, _provider(instance), _model(instance))

    def _with_query(self, inv: Invocation, query: Any) -> Invocation:
        text = _text(query)
        if self._capture and text is not None:
            inv.attributes[semconv.RETRIEVAL_QUERY_TEXT] = text
        return inv

    def _input(self, inv: Invocation, value: Any) -> None:
        text = _text(value)
        if self._capture and text is not None:
            inv.input_messages = [_message("user", text)]

    def _call_id(self, run_id: Hashable | None) -> str | None:
        """The tool call id of the agent step that encloses ``run_id``."""
        return next((i.call_id for _, i in self._ancestry(run_id) if i.call_id), None)

    def _tool(self, instance: Any, args: dict[str, Any], call_id: str | None) -> Invocation:
        meta = getattr(instance, "metadata", None)
        name = getattr(meta, "name", None) or type(instance).__name__
        extra = {semconv.TOOL_TYPE: "function", semconv.TOOL_CALL_ID: call_id}
        description = getattr(meta, "description", None)
        if isinstance(description, str) and description:
            extra[semconv.TOOL_DESCRIPTION] = description
        inv = step_invocation("tool", name, extra)
        if self._capture:
            call_args = {**dict(args.get("kwargs") or {})}
            if args.get("args"):
                call_args["args"] = list(args["args"])
            inv.attributes[semconv.TOOL_CALL_ARGUMENTS] = _json(call_args)
        return inv

    def _workflow(self, instance: Any, bases: frozenset[str], args: dict[str, Any]) -> Invocation:
        if "BaseWorkflowAgent" in bases:
            name = getattr(instance, "name", None) or type(instance).__name__
            extra = {}
            description = getattr(instance, "description", None)
            if isinstance(description, str) and description:
                extra[semconv.AGENT_DESCRIPTION] = description
            inv = step_invocation("agent", str(name), extra)
        else:
            inv = step_invocation("workflow", type(instance).__name__)
        # the agent's question: its start event's user message
        self._input(inv, getattr(args.get("start_event"), "user_msg", None))
        return inv

    # span exit / drop --------------------------------------------------------------------

    def exit(self, span_id: str, result: Any) -> None:
        info = self._info.get(span_id)
        if info is None:
            return
        inv = self.spans.get(span_id)
        try:
            if inv is not None:
                self._result(info, inv, result)
            if info.kind == "llm" and not info.ended and _is_stream(result):
                info.exited = True  # the stream ends it (the LLM's end event)
                self.spans.release(span_id)
                self._watch(result, span_id)
                return
            if info.kind == "query" and inv is not None and self._follow(span_id, inv, result):
                self.spans.release(span_id)
                return
        except Exception as exc:
            log_once("llama_index span exit", exc)
        self._close(span_id)

    def _follow(self, run_id: str, inv: Invocation, result: Any) -> bool:
        """A streamed answer: LlamaIndex calls the LLM only as the app iterates it, outside
        the query. The query's span stays open until the stream ends, and each step of the
        stream runs as part of the query (its span current, its run the dispatcher's active
        span), so the LLM's span goes under it."""
        if type(result).__name__ not in _STREAMED_ANSWERS:
            return False
        gen = getattr(result, "response_gen", None)
        if inspect.isgenerator(gen):
            result.response_gen = self._stream(run_id, inv, gen)
        elif inspect.isasyncgen(gen):
            result.response_gen = self._astream(run_id, inv, gen)
        else:
            return False
        self._watch(result.response_gen, run_id)
        return True

    def _watch(self, stream: Any, run_id: Hashable) -> None:
        """A stream the app drops without reading it to its end (never started, or left
        half-read) ends its run's span, and the streamed runs under it, when it is
        garbage-collected: ``llmtap.stream.end`` says ``abandoned``."""
        # a stream class without weak references: its span ends when it ends, as before
        with suppress(TypeError):
            weakref.finalize(stream, self._abandoned, run_id)

    def _abandoned(self, run_id: Hashable) -> None:
        try:
            self._end_stream(run_id, "abandoned")
        except Exception as exc:
            log_once("llama_index abandoned stream", exc)

    def _end_stream(self, run_id: Hashable, end: str, error: BaseException | None = None) -> None:
        """Close ``run_id`` and the runs still open under it (the innermost first), each span
        marked with how its stream ended (``llmtap.stream.end``); a stream ended earlier is
        no longer known and is left alone."""
        with self._lock:
            known = list(self._info)
        under = [r for r in known if r != run_id and self._descends(r, run_id)]
        for each in [*reversed(under), run_id]:
            inv = self.spans.get(each)
            if inv is not None and not inv.ended:
                inv.attributes[semconv.LLMTAP_STREAM_END] = end
            if each in self._info:
                self._close(each, error)

    def _descends(self, run_id: Hashable, ancestor: Hashable) -> bool:
        """Whether ``ancestor`` encloses ``run_id`` (through the runs that make spans)."""
        for _ in range(1000):  # a bound against a cycle
            info = self._info.get(run_id) if run_id is not None else None
            if info is None:
                return False
            if info.above == ancestor:
                return True
            run_id = info.above
        return False

    def _stream(self, run_id: str, inv: Invocation, gen: Any) -> Any:
        texts: list[str] = []
        try:
            while True:
                with self._inside_run(run_id, inv):
                    try:
                        item = next(gen)
                    except StopIteration:
                        break
                if isinstance(item, str):
                    texts.append(item)
                yield item
        except GeneratorExit:
            # ended first: closing LlamaIndex's generator drops the model's stream inside,
            # which would otherwise end as abandoned
            self._stream_end(run_id, inv, texts, "closed")
            gen.close()
            raise
        except BaseException as exc:
            self._stream_end(run_id, inv, texts, "error", exc)
            raise
        self._stream_end(run_id, inv, texts, "completed")

    async def _astream(self, run_id: str, inv: Invocation, gen: Any) -> Any:
        texts: list[str] = []
        try:
            while True:
                with self._inside_run(run_id, inv):
                    try:
                        item = await gen.__anext__()
                    except StopAsyncIteration:
                        break
                if isinstance(item, str):
                    texts.append(item)
                yield item
        except GeneratorExit:
            # ended first: closing LlamaIndex's generator drops the model's stream inside,
            # which would otherwise end as abandoned
            self._stream_end(run_id, inv, texts, "closed")
            await gen.aclose()
            raise
        except BaseException as exc:
            self._stream_end(run_id, inv, texts, "error", exc)
            raise
        self._stream_end(run_id, inv, texts, "completed")

    @contextmanager
    def _inside_run(self, run_id: str, inv: Invocation) -> Iterator[None]:
        token = run_token = None
        try:
            if inv.span is not None:
                token = otel_context.attach(trace.set_span_in_context(inv.span))
            run_token = _active_span_id().set(run_id)
        except Exception as exc:
            log_once("llama_index stream context", exc)
        try:
            yield
        finally:
            try:
                if run_token is not None:
                    _active_span_id().reset(run_token)
                if token is not None:
                    otel_context.detach(token)
            except Exception as exc:
                log_once("llama_index stream context", exc)

    def _stream_end(
        self,
        run_id: str,
        inv: Invocation,
        texts: list[str],
        end: str,
        error: BaseException | None = None,
    ) -> None:
        try:
            if inv.ended:
                return  # abandoned: ended when the app dropped the stream
            if self._capture and texts:
                reason = "stop" if error is None else "error"
                inv.output_messages = [_answer_message("".join(texts), reason)]
            self._end_stream(run_id, end, error)
        except Exception as exc:
            log_once("llama_index stream end", exc)

    def drop(self, span_id: str, error: BaseException | None) -> None:
        if span_id in self._info:
            self._close(span_id, error or RuntimeError("dropped"))

    def _close(self, span_id: Hashable, error: BaseException | None = None) -> None:
        with self._lock:
            self._info.pop(span_id, None)
        self.spans.close(span_id, error)

    def _result(self, info: _Info, inv: Invocation, result: Any) -> None:
        kind = info.kind
        if kind in ("retrieval", "rerank"):
            if self._capture and isinstance(result, list):
                inv.attributes[semconv.RETRIEVAL_DOCUMENTS] = documents_json(_documents(result))
        elif kind == "tool":
            if self._capture and result is not None:
                content = getattr(result, "content", result)
                inv.attributes[semconv.TOOL_CALL_RESULT] = _json(content)
        elif kind == "embedding":
            self._embedding(inv, result)
        elif kind in ("query", "workflow") and self._capture:
            text = _answer(result)
            if text is not None:
                inv.output_messages = [_answer_message(text)]

    def _embedding(self, inv: Invocation, result: Any) -> None:
        if isinstance(result, list) and result:
            first = result[0] if isinstance(result[0], list) else result
            if isinstance(first, list):
                inv.attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] = len(first)

    # events ------------------------------------------------------------------------------

    def event(self, event: Any) -> None:
        name = type(event).__name__
        if name in ("LLMChatStartEvent", "LLMCompletionStartEvent"):
            run_id = self._enclosing(event.span_id, "llm")
            inv = self.spans.get(run_id) if run_id is not None else None
            if inv is not None and self._capture and inv.input_messages is None:
                prompt = getattr(event, "prompt", None)
                if isinstance(prompt, str):
                    inv.input_messages = [_message("user", prompt)]
                else:
                    inv.input_messages = _messages(getattr(event, "messages", None))
        elif name in ("LLMChatEndEvent", "LLMCompletionEndEvent"):
            run_id = self._enclosing(event.span_id, "llm")
            if run_id is not None:
                self._llm_end(run_id, event.response)
        elif name == "ExceptionEvent":
            run_id = self._enclosing(event.span_id, "llm")
            info = self._info.get(run_id) if run_id is not None else None
            if info is not None and info.exited:
                # a streamed answer closed before its end is no failure of the model call
                error = event.exception
                if isinstance(error, GeneratorExit):
                    self._end_stream(run_id, "closed")
                else:
                    self._end_stream(run_id, "error", error)

    def _enclosing(self, run_id: Hashable | None, kind: str) -> Hashable | None:
        return next((r for r, info in self._ancestry(run_id) if info.kind == kind), None)

    def _llm_end(self, run_id: Hashable, response: Any) -> None:
        info = self._info[run_id]
        info.ended = True
        inv = self.spans.get(run_id)
        if inv is not None and response is not None and not self.spans.merged(run_id):
            _record_response(inv, response, self._capture)
        if info.exited:
            self._end_stream(run_id, "completed")


def _safe_metadata(instance: Any) -> Any:
    try:
        return instance.metadata
    except Exception:
        return None


def _active_span_id() -> Any:
    """LlamaIndex's context variable holding the dispatcher's active span id."""
    from llama_index.core.instrumentation.span import active_span_id

    return active_span_id


def _is_stream(result: Any) -> bool:
    return inspect.isgenerator(result) or inspect.isasyncgen(result)


def _answer(result: Any) -> str | None:
    """The text of a query engine's ``Response``, a workflow's or an agent's result."""
    if result is None or type(result).__name__ in ("StreamingResponse", "AsyncStreamingResponse"):
        return None
    for _ in range(3):  # a workflow's StopEvent -> its result -> an agent's response
        if isinstance(result, str):
            return result
        value = getattr(result, "response", None)
        if value is not None:
            return _text(value) or None  # "" until a streamed chat answer is read
        result = getattr(result, "result", None)
    return None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _record_response(inv: Invocation, response: Any, capture: bool) -> None:
    """Model, usage and output of an LLM call no provider adapter recorded."""
    attrs = inv.attributes
    raw = getattr(response, "raw", None)
    usage = _get(raw, "usage")
    for key, names in (
        (semconv.USAGE_INPUT_TOKENS, ("input_tokens", "prompt_tokens", "prompt_eval_count")),
        (semconv.USAGE_OUTPUT_TOKENS, ("output_tokens", "completion_tokens", "eval_count")),
    ):
        for source in (usage, raw, getattr(response, "additional_kwargs", None)):
            value = next((_get(source, n) for n in names if _get(source, n) is not None), None)
            if isinstance(value, int):
                attrs[key] = value
                break
    model = _get(raw, "model")
    if isinstance(model, str) and model:
        attrs[semconv.RESPONSE_MODEL] = model
    response_id = _get(raw, "id")
    if isinstance(response_id, str) and response_id:
        attrs[semconv.RESPONSE_ID] = response_id
    reason = _finish_reason(response)
    attrs[semconv.RESPONSE_FINISH_REASONS] = [reason]
    if capture:
        message = getattr(response, "message", None)
        text = _text(message) if message is not None else getattr(response, "text", None)
        if text is not None:
            inv.output_messages = [_answer_message(text, reason)]


def _finish_reason(response: Any) -> str:
    """The provider's finish reason as LlamaIndex passes it on (its response's ``raw``, a
    streamed chunk's ``delta``, OpenAI's first choice, ``additional_kwargs``), in semconv
    terms; a requested tool call; else "stop": the model call ended without error."""
    raw = getattr(response, "raw", None)
    kwargs = getattr(response, "additional_kwargs", None)
    choices = _get(raw, "choices")
    first = choices[0] if isinstance(choices, (list, tuple)) and choices else None
    for source in (raw, _get(raw, "delta"), first, kwargs):
        for key in ("finish_reason", "stop_reason", "done_reason"):
            value = _get(source, key)
            if isinstance(value, str) and value:
                return _parts.finish_reason(value)
    if _get(kwargs, "tool_calls"):
        return "tool_call"
    return "stop"


def _get(source: Any, key: str) -> Any:
    if source is None:
        return None
    if isinstance(source, dict):
        return source.get(key)
    try:
        return getattr(source, key, None)
    except Exception:
        return None
