"""Every attribute llmtap emits is a registered, non-deprecated GenAI semconv v1.41 attribute of
the registered type; content JSON validates against the semconv JSON schemas; metrics match
``model/metrics.yaml``.

Real SDK calls of every instrumented SDK (OpenAI, Anthropic, google-genai, Bedrock, Mistral,
Cohere, Ollama, Groq, Together, LiteLLM; queries of Chroma, Qdrant and Pinecone) and runs of
every instrumented agent framework (MCP, the OpenAI Agents SDK, LlamaIndex, LangChain and
LangGraph, PydanticAI) go through the instrumentation to the loopback dev server (or the
vector store or MCP server in process); nothing of llmtap is mocked. Add a scenario to
``SCENARIOS`` to cover a new adapter or code path; every instrumentation of
``llmtap.instrumentation.registry`` needs one. A problem a scenario found and that is not fixed
yet is named in its ``known`` (the test fails once it is gone, so the entry goes with it).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from opentelemetry.sdk.metrics.export import Histogram, InMemoryMetricReader
from opentelemetry.trace import StatusCode

from llmtap import semconv
from llmtap.pipeline import tokens

# the pinned upstream copy (semconv/upstream/README.md); LLMTAP_SEMCONV_DIR checks another
_DEFAULT_SEMCONV = Path(__file__).resolve().parents[1] / "semconv" / "upstream" / "gen-ai-v1.41"
SEMCONV_DIR = Path(os.environ.get("LLMTAP_SEMCONV_DIR", _DEFAULT_SEMCONV))
MODEL = SEMCONV_DIR / "model"
DOCS = SEMCONV_DIR / "docs"

if not (MODEL / "registry.yaml").is_file():
    raise FileNotFoundError(f"GenAI semconv v1.41 model not found at {MODEL}")

REGISTRY_FILES = ("registry.yaml", "openai-registry.yaml", "registry-deprecated.yaml")

# JSON-valued (`any`) attributes with a schema in docs/.
CONTENT_SCHEMAS = {
    semconv.INPUT_MESSAGES: "gen-ai-input-messages.json",
    semconv.OUTPUT_MESSAGES: "gen-ai-output-messages.json",
    semconv.SYSTEM_INSTRUCTIONS: "gen-ai-system-instructions.json",
    semconv.TOOL_DEFINITIONS: "gen-ai-tool-definitions.json",
    semconv.RETRIEVAL_DOCUMENTS: "gen-ai-retrieval-documents.json",
}

# Enums whose value must be one of the registered members (the others are open enums).
CLOSED_ENUMS = frozenset(
    {
        semconv.OPERATION,
        semconv.PROVIDER,
        semconv.OUTPUT_TYPE,
        semconv.TOKEN_TYPE,
        semconv.OPENAI_API_TYPE,
    }
)

# gen_ai.provider.name values llmtap emits that are not well-known values of v1.41 (the
# conventions leave the value to the instrumentation's best knowledge); pricing knows them.
# `_OTHER`: a model call whose provider an agent framework cannot name (v1.41 has no member
# for it; llmtap spells it as the conventions' other enums spell their fallback)
OTHER_PROVIDER = "_OTHER"
CUSTOM_PROVIDERS = frozenset({"ollama", "together_ai", OTHER_PROVIDER})

# General (non-GenAI) semconv attributes llmtap puts on GenAI spans and metrics.
GENERAL_ATTRIBUTES = {
    semconv.SERVER_ADDRESS: "string",
    semconv.SERVER_PORT: "int",
    semconv.ERROR_TYPE: "string",
    semconv.USER_ID: "string",
    semconv.SESSION_ID: "string",
    # the database conventions' attributes of the vector stores' retrieval spans
    "db.system.name": "string",
    "db.collection.name": "string",
    "db.namespace": "string",
    "db.operation.name": "string",
    # the MCP, JSON-RPC and RPC conventions of semconv v1.41 (not in the GenAI snapshot) on
    # MCP request spans, with their upstream types
    semconv.MCP_METHOD_NAME: "string",
    semconv.MCP_PROTOCOL_VERSION: "string",
    semconv.MCP_RESOURCE_URI: "string",
    semconv.JSONRPC_REQUEST_ID: "string",
    semconv.RPC_RESPONSE_STATUS_CODE: "string",
}

CHECKED_PREFIXES = ("gen_ai.", "openai.")


# the registry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribute:
    id: str
    type: str  # string int double boolean string[] int[] double[] boolean[] any
    deprecated: bool
    members: dict[Any, bool] | None = None  # enum value -> every member with it is deprecated


def _attribute_type(raw: Any) -> tuple[str, dict[Any, bool] | None]:
    if isinstance(raw, str):
        return raw, None
    members = raw["members"]
    values: dict[Any, bool] = {}
    for member in members:
        value = member["value"]
        values[value] = values.get(value, True) and "deprecated" in member
    kinds = {type(v) for v in values}
    if kinds == {str}:
        return "string", values
    if kinds == {int}:
        return "int", values
    raise ValueError(f"enum with mixed member types: {sorted(map(str, kinds))}")


@cache
def registry() -> dict[str, Attribute]:
    attrs: dict[str, Attribute] = {}
    for name in REGISTRY_FILES:
        doc = yaml.safe_load((MODEL / name).read_text())
        for group in doc["groups"]:
            for entry in group.get("attributes", ()):
                if "id" not in entry:  # a `ref`, defined elsewhere
                    continue
                kind, members = _attribute_type(entry["type"])
                attrs[entry["id"]] = Attribute(entry["id"], kind, "deprecated" in entry, members)
    return attrs


@dataclass(frozen=True)
class MetricSpec:
    name: str
    instrument: str
    unit: str
    value_type: str | None
    attributes: frozenset[str]
    required: frozenset[str]


@cache
def metric_specs() -> dict[str, MetricSpec]:
    groups = {g["id"]: g for g in yaml.safe_load((MODEL / "metrics.yaml").read_text())["groups"]}

    def collect(group_id: str) -> tuple[set[str], set[str]]:
        group = groups[group_id]
        names: set[str] = set()
        required: set[str] = set()
        if group.get("extends"):
            names, required = collect(group["extends"])
        for entry in group.get("attributes", ()):
            name = entry.get("ref") or entry["id"]
            names.add(name)
            if entry.get("requirement_level") == "required":
                required.add(name)
        return names, required

    specs = {}
    for group in groups.values():
        if group.get("type") != "metric":
            continue
        names, required = collect(group["id"])
        value_type = (
            group.get("annotations", {}).get("code_generation", {}).get("metric_value_type")
        )
        specs[group["metric_name"]] = MetricSpec(
            group["metric_name"],
            group["instrument"],
            group["unit"],
            value_type,
            frozenset(names),
            frozenset(required),
        )
    return specs


@cache
def event_names() -> frozenset[str]:
    doc = yaml.safe_load((MODEL / "events.yaml").read_text())
    return frozenset(g["name"] for g in doc["groups"] if g.get("type") == "event")


@cache
def content_validator(attribute: str) -> jsonschema.protocols.Validator:
    schema = json.loads((DOCS / CONTENT_SCHEMAS[attribute]).read_text())
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


def llmtap_attribute_names() -> tuple[frozenset[str], tuple[str, ...]]:
    """(exact names, prefixes) from the ``LLMTAP_*`` constants of `llmtap.semconv`."""
    values = [v for k, v in vars(semconv).items() if k.startswith("LLMTAP_") and isinstance(v, str)]
    return (
        frozenset(v for v in values if not v.endswith(".")),
        tuple(v for v in values if v.endswith(".")),
    )


# checks -------------------------------------------------------------------------------------

_SCALARS = {"string": (str,), "int": (int,), "double": (float,), "boolean": (bool,)}


def _is(value: Any, kind: str) -> bool:
    if kind in ("int", "double") and isinstance(value, bool):
        return False
    return type(value) in _SCALARS[kind]


def type_problem(kind: str, value: Any) -> str | None:
    """Why `value` does not have registry type `kind`, or None when it does."""
    if kind in _SCALARS:
        return None if _is(value, kind) else f"{kind} expected, got {type(value).__name__}"
    if kind.endswith("[]"):
        item = kind[:-2]
        if not isinstance(value, tuple | list):
            return f"{kind} expected, got {type(value).__name__}"
        wrong = [type(v).__name__ for v in value if not _is(v, item)]
        return f"{kind} expected, items of type {wrong}" if wrong else None
    if kind == "any":
        if not isinstance(value, str):
            return f"JSON string expected for `any`, got {type(value).__name__}"
        try:
            json.loads(value)
        except ValueError as exc:
            return f"not valid JSON: {exc}"
        return None
    return f"unknown registry type {kind!r}"


def _llmtap_value(key: str, value: Any, attributes: dict[str, Any]) -> bool:
    """A value of a closed enum that llmtap documents: a step span's operation is its kind
    (llmtap's registry, span ``span.llmtap.step``: ``rerank`` from ``llmtap.rerank`` and the
    Cohere and Together rerank calls), and the `CUSTOM_PROVIDERS`."""
    if key == semconv.PROVIDER:
        return value in CUSTOM_PROVIDERS
    return key == semconv.OPERATION and attributes.get(semconv.LLMTAP_STEP_KIND) == value


def attribute_problems(attributes: dict[str, Any], where: str) -> list[str]:
    reg = registry()
    llmtap_names, llmtap_prefixes = llmtap_attribute_names()
    problems = []
    for key, value in attributes.items():

        def bad(text: str, key: str = key, value: Any = value) -> None:
            problems.append(f"{where}: {key}={value!r}: {text}")

        if key.startswith("llmtap."):
            if key not in llmtap_names and not key.startswith(llmtap_prefixes):
                bad("not an llmtap.semconv LLMTAP_* name")
            continue
        if key in GENERAL_ATTRIBUTES:
            problem = type_problem(GENERAL_ATTRIBUTES[key], value)
            if problem:
                bad(problem)
            continue
        if not key.startswith(CHECKED_PREFIXES):
            continue
        spec = reg.get(key)
        if spec is None:
            bad("not in the semconv registry")
            continue
        if spec.deprecated:
            bad("deprecated in semconv v1.41")
        problem = type_problem(spec.type, value)
        if problem:
            bad(problem)
            continue
        if spec.members is not None:
            if spec.members.get(value):
                bad("deprecated enum member")
            elif _llmtap_value(key, value, attributes):
                pass
            elif key in CLOSED_ENUMS and value not in spec.members:
                bad(f"not a member of {sorted(spec.members)}")
        if key in CONTENT_SCHEMAS:
            errors = sorted(
                content_validator(key).iter_errors(json.loads(value)), key=lambda e: list(e.path)
            )
            for error in errors[:3]:
                bad(f"schema {CONTENT_SCHEMAS[key]}: {list(error.path)}: {error.message}")
    return problems


def metric_problems(
    reader: InMemoryMetricReader, scopes: tuple[str, ...] = ("llmtap",)
) -> tuple[list[str], set[str]]:
    specs = metric_specs()
    problems: list[str] = []
    seen: set[str] = set()
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            if sm.scope.name not in scopes:
                continue
            for metric in sm.metrics:
                seen.add(metric.name)
                spec = specs.get(metric.name)
                if spec is None:
                    problems.append(f"metric {metric.name}: not in metrics.yaml")
                    continue
                if metric.unit != spec.unit:
                    problems.append(f"metric {metric.name}: unit {metric.unit!r} != {spec.unit!r}")
                if spec.instrument == "histogram" and not isinstance(metric.data, Histogram):
                    problems.append(
                        f"metric {metric.name}: {type(metric.data).__name__}, not histogram"
                    )
                    continue
                for point in metric.data.data_points:
                    where = f"metric {metric.name}{dict(point.attributes)}"
                    attrs = dict(point.attributes)
                    missing = spec.required - attrs.keys()
                    if missing:
                        problems.append(f"{where}: required attributes missing: {sorted(missing)}")
                    extra = attrs.keys() - spec.attributes
                    if extra:
                        problems.append(f"{where}: attributes not defined for it: {sorted(extra)}")
                    problems += attribute_problems(attrs, where)
                    if spec.value_type == "int" and type(point.sum) is not int:
                        problems.append(f"{where}: int values expected, sum is {point.sum!r}")
                    if spec.value_type == "double" and type(point.sum) is not float:
                        problems.append(f"{where}: double values expected, sum is {point.sum!r}")
    return problems, seen


# the registry itself --------------------------------------------------------------------------


def test_registry_parses_types_enums_and_deprecations() -> None:
    reg = registry()
    assert reg["gen_ai.request.temperature"].type == "double"
    assert reg["gen_ai.request.top_k"].type == "double"
    assert reg["gen_ai.request.max_tokens"].type == "int"
    assert reg["gen_ai.request.stream"].type == "boolean"
    assert reg["gen_ai.request.stop_sequences"].type == "string[]"
    assert reg["gen_ai.input.messages"].type == "any"
    provider = reg["gen_ai.provider.name"]
    assert provider.type == "string" and not provider.deprecated
    assert {"openai", "anthropic", "azure.ai.openai"} <= set(provider.members)
    assert reg["openai.api.type"].members == {"chat_completions": False, "responses": False}
    assert reg["openai.response.system_fingerprint"].type == "string"
    for old in ("gen_ai.system", "gen_ai.usage.prompt_tokens", "gen_ai.openai.request.seed"):
        assert reg[old].deprecated, old
    # `completion` is deprecated but shares its value with `output`, which is not.
    assert reg["gen_ai.token.type"].members == {"input": False, "output": False}


def test_checker_rejects_what_it_should() -> None:
    problems = attribute_problems(
        {
            "gen_ai.request.temperature": 1,  # int for double
            "gen_ai.request.max_tokens": 1.0,  # float for int
            "gen_ai.request.stream": 1,  # int for boolean
            "gen_ai.request.stop_sequences": ("a", 2),
            "gen_ai.system": "openai",  # deprecated
            "gen_ai.made.up": "x",  # unknown
            "gen_ai.operation.name": "chatting",  # not a member
            "gen_ai.input.messages": "[{",  # not JSON
            "gen_ai.output.messages": json.dumps([{"role": "assistant"}]),  # schema
            "llmtap.nonsense": True,
            "server.port": "443",
        },
        "span",
    )
    flagged = {p.split(":")[1].strip().split("=")[0] for p in problems}
    assert flagged == {
        "gen_ai.request.temperature",
        "gen_ai.request.max_tokens",
        "gen_ai.request.stream",
        "gen_ai.request.stop_sequences",
        "gen_ai.system",
        "gen_ai.made.up",
        "gen_ai.operation.name",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "llmtap.nonsense",
        "server.port",
    }
    assert (
        attribute_problems(
            {
                "gen_ai.request.temperature": 1.0,
                "gen_ai.request.stop_sequences": ("a",),
                "gen_ai.output.messages": json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [{"type": "text", "content": "hi"}],
                            "finish_reason": "stop",
                        }
                    ]
                ),
                "llmtap.metadata.anything": 3,
                "http.response.status_code": 200,  # not a GenAI attribute: not checked here
            },
            "span",
        )
        == []
    )


def test_semconv_constants_are_registered_and_current() -> None:
    reg, specs, events = registry(), metric_specs(), event_names()
    problems = []
    for name, value in vars(semconv).items():
        if not isinstance(value, str) or not value.startswith(CHECKED_PREFIXES):
            continue
        if value in semconv.GEN_AI_EXTENSIONS:
            continue
        if name.startswith("METRIC_"):
            if value not in specs:
                problems.append(f"{name}={value!r} is not in metrics.yaml")
        elif name.startswith("EVENT_"):
            if value not in events:
                problems.append(f"{name}={value!r} is not in events.yaml")
        elif value not in reg:
            problems.append(f"{name}={value!r} is not in the registry")
        elif reg[value].deprecated:
            problems.append(f"{name}={value!r} is deprecated")
    assert problems == []


# scenarios ----------------------------------------------------------------------------------

OPENAI = "openai"
ANTHROPIC = "anthropic"
CHAT_MODEL = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"
LLAMA_CLAUDE = "claude-opus-4-7"  # LlamaIndex sends no temperature for it (anthropic 2)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
RESPONSES_TOOL = {
    "type": "function",
    "name": "get_weather",
    **{k: WEATHER_TOOL["function"][k] for k in ("description", "parameters")},
}
ANTHROPIC_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": WEATHER_TOOL["function"]["parameters"],
}
TINY_PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


class Clients:
    def __init__(self, devserver: Any) -> None:
        import anthropic
        import openai

        self.devserver = devserver
        self._closers: list[Callable[[], Any]] = []
        self.openai = openai.OpenAI(base_url=devserver.openai_base_url, api_key="k", max_retries=0)
        self.anthropic = anthropic.Anthropic(
            base_url=devserver.anthropic_base_url, api_key="k", max_retries=0
        )

    def async_openai(self) -> Any:
        import openai

        return openai.AsyncOpenAI(
            base_url=self.devserver.openai_base_url, api_key="k", max_retries=0
        )

    # the other SDKs, made on first use (as their own tests make them), closed by close()

    def _made(self, name: str, client: Any, close: Callable[[], Any] | None = None) -> Any:
        self._closers.append(close or client.close)
        setattr(self, name, client)
        return client

    def __getattr__(self, name: str) -> Any:
        make = getattr(type(self), f"_make_{name}", None)
        if make is None or name.startswith("_"):
            raise AttributeError(name)
        return make(self)

    def _make_mistral(self) -> Any:
        try:  # SDK 2.x, 3.x
            from mistralai.client import Mistral
        except ImportError:  # SDK 1.x
            from mistralai import Mistral

        client = Mistral(api_key="k", server_url=f"{self.devserver.base_url}/mistral")
        return self._made("mistral", client, lambda: None)

    def _make_cohere(self) -> Any:
        import inspect

        import cohere

        # cohere < 5.16 takes no max_retries
        retries = (
            {"max_retries": 0}
            if "max_retries" in inspect.signature(cohere.ClientV2).parameters
            else {}
        )
        client = cohere.ClientV2(api_key="k", base_url=self.devserver.base_url, **retries)
        return self._made("cohere", client, client._client_wrapper.httpx_client.httpx_client.close)

    def _make_ollama(self) -> Any:
        import ollama

        client = ollama.Client(host=self.devserver.base_url)
        return self._made("ollama", client, client._client.close)

    def _make_groq(self) -> Any:
        import groq

        client = groq.Groq(base_url=self.devserver.base_url, api_key="k", max_retries=0)
        return self._made("groq", client)

    def _make_together(self) -> Any:
        import inspect

        import together

        # 3.x paths start with /v1, 2.x base URLs end with it
        root = f"{self.devserver.base_url}/together"
        if '"/v1/chat/completions"' not in inspect.getsource(together.resources.chat.completions):
            root += "/v1"
        client = together.Together(base_url=root, api_key="k", max_retries=0)
        return self._made("together", client)

    def _make_litellm(self) -> Any:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no cost map download
        import litellm

        litellm.suppress_debug_info = True
        return self._made("litellm", litellm, lambda: None)

    def _make_chroma(self) -> Any:
        import chromadb
        from chromadb import Documents, EmbeddingFunction, Embeddings

        class Letters(EmbeddingFunction[Documents]):
            """Deterministic and offline: letter counts, normalised."""

            def __init__(self) -> None:
                pass

            def __call__(self, input: Documents) -> Embeddings:
                vectors = [[text.lower().count(c) + 0.01 for c in "aeiosrtnd"] for text in input]
                return [[v / sum(x * x for x in vec) ** 0.5 for v in vec] for vec in vectors]

            @staticmethod
            def name() -> str:
                return "llmtap-semconv-letters"

            def get_config(self) -> dict[str, Any]:
                return {}

            @staticmethod
            def build_from_config(config: dict[str, Any]) -> Any:
                return Letters()

        client = chromadb.EphemeralClient(chromadb.Settings(anonymized_telemetry=False))
        collection = client.create_collection(
            f"kb-{uuid.uuid4().hex[:8]}",
            embedding_function=Letters(),
            metadata={"hnsw:space": "cosine"},
        )
        collection.upsert(ids=list(KB), documents=list(KB.values()))
        return self._made("chroma", collection, lambda: None)

    def _make_qdrant(self) -> Any:
        from qdrant_client import QdrantClient, models

        client = QdrantClient(":memory:")
        client.create_collection(
            "kb", vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE)
        )
        client.upsert(
            "kb",
            points=[
                models.PointStruct(id=i, vector=vector, payload={"text": text})
                for i, (vector, text) in enumerate(zip(VECTORS, KB.values(), strict=True))
            ],
        )
        return self._made("qdrant", client)

    def _make_gemini(self) -> Any:
        from google import genai
        from google.genai import types

        http = types.HttpOptions(base_url=self.devserver.base_url)
        client = genai.Client(api_key="k", http_options=http)
        return self._made("gemini", client, getattr(client, "close", lambda: None))

    def _make_bedrock(self) -> Any:
        """A new client on every use: made after instrument() (llmtap hooks the client class
        botocore builds, and the scenarios instrument afresh)."""
        return self.bedrock_client()

    def bedrock_client(self) -> Any:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            endpoint_url=self.devserver.base_url,
            aws_access_key_id="k",
            aws_secret_access_key="k",
            config=Config(retries={"total_max_attempts": 1}),
        )
        self._closers.append(client.close)
        return client

    def pinecone_index(self, scenario: str | None = None) -> Any:
        """An index made now: made after instrument(), its query is the patched one."""
        from pinecone import Pinecone

        if scenario is None:
            return Pinecone(api_key="k").Index(host=self.devserver.base_url)
        headers = {"x-devserver-scenario": scenario}
        try:  # 7.x - 9.x: headers of the index
            return Pinecone(api_key="k").Index(
                host=self.devserver.base_url, additional_headers=headers
            )
        except TypeError:  # 10.x: headers of the client
            return Pinecone(api_key="k", additional_headers=headers).Index(
                host=self.devserver.base_url
            )

    # the agent frameworks, set up on first use (each scenario builds its models and agents)

    def _make_mcp(self) -> Any:
        """A builder of the in-process MCP server the scenarios talk to over JSON-RPC."""
        try:  # mcp 2.x
            from mcp.server.mcpserver import MCPServer as FastMCP
        except ImportError:  # mcp 1.x
            from mcp.server.fastmcp import FastMCP

        def build() -> Any:
            server = FastMCP("calc")

            @server.tool()
            def add(a: int, b: int) -> int:
                """Add two numbers."""
                return a + b

            @server.tool()
            def boom(x: str) -> str:
                """Always fails."""
                raise ValueError("no " + x)

            @server.resource("notes://today")
            def today() -> str:
                return "buy milk"

            @server.prompt()
            def greet(name: str) -> str:
                return f"Hello {name}"

            return server

        return self._made("mcp", build, lambda: None)

    def _make_agents(self) -> Any:
        """The OpenAI Agents SDK with the app's own trace processor in place of the default
        one (which exports to api.openai.com); llmtap adds its processor beside it."""
        import agents

        class AppProcessor:
            def on_trace_start(self, t: Any) -> None: ...
            def on_trace_end(self, t: Any) -> None: ...
            def on_span_start(self, span: Any) -> None: ...
            def on_span_end(self, span: Any) -> None: ...
            def shutdown(self) -> None: ...
            def force_flush(self) -> None: ...

        disabled = os.environ.pop("OPENAI_AGENTS_DISABLE_TRACING", None)
        agents.set_trace_processors([AppProcessor()])

        def close() -> None:
            agents.set_trace_processors([])
            if disabled is not None:
                os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = disabled

        return self._made("agents", agents, close)

    def agents_client(self) -> Any:
        """An AsyncOpenAI client for the agents' models, made in the running event loop."""
        import openai

        return openai.AsyncOpenAI(
            base_url=self.devserver.openai_base_url, api_key="k", max_retries=0
        )

    def _make_llama_index(self) -> Any:
        """llama-index-llms-anthropic on anthropic 2.x: a ``dict`` in place of its
        ``MessageParam`` (a Union alias since anthropic 2), as tests/instrumentation does."""
        import typing

        _llama_integrations()
        from llama_index.llms.anthropic import utils

        before = utils.MessageParam
        if typing.get_origin(before) is typing.Union:
            utils.MessageParam = dict

        def close() -> None:
            utils.MessageParam = before

        return self._made("llama_index", utils, close)

    def llama_claude(self, **kwargs: Any) -> Any:
        self.llama_index  # noqa: B018 (the compatibility patch above)
        from llama_index.llms.anthropic import Anthropic

        return Anthropic(
            model=LLAMA_CLAUDE,
            base_url=self.devserver.anthropic_base_url,
            api_key="k",
            max_retries=0,
            **kwargs,
        )

    def lc_openai(self, model: str = CHAT_MODEL) -> Any:
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            model=model, base_url=self.devserver.openai_base_url, api_key="k", max_retries=0
        )

    def lc_anthropic(self) -> Any:
        from langchain_anthropic import ChatAnthropic

        return ChatAnthropic(
            model=CLAUDE, base_url=self.devserver.anthropic_base_url, api_key="k", max_retries=0
        )

    def pydantic_openai(self, model: str = CHAT_MODEL) -> Any:
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider

        provider = OpenAIProvider(base_url=self.devserver.openai_base_url, api_key="k")
        return OpenAIChatModel(model, provider=provider)

    def close(self) -> None:
        self.openai.close()
        self.anthropic.close()
        for close in self._closers:
            close()


@dataclass(frozen=True)
class Scenario:
    id: str
    provider: str | tuple[str, ...] | None  # the gen_ai.provider.name (None: vector stores)
    run: Callable[[Clients], None]
    spans: int = 1
    settings: dict[str, Any] = field(default_factory=dict)
    errors: int = 0  # spans expected to carry error.type
    entry: str | None = None  # the llmtap_<entry> instrumentation (the provider's by default)
    # an agent framework's run: workflow, agent, tool and step spans beside the model calls'
    # (`framework_span_problem`), the GenAI metrics it records named in `metrics`
    framework: bool = False
    metrics: frozenset[str] = frozenset()
    scopes: tuple[str, ...] = ("llmtap",)  # the instrumentation scopes of the checked spans
    known: tuple[str, ...] = ()  # regular expressions of known problems (see the test)

    def __str__(self) -> str:
        return self.id

    @property
    def instrumentation(self) -> str:
        return f"llmtap_{self.entry or self.provider}"

    @property
    def providers(self) -> tuple[str | None, ...]:
        return self.provider if isinstance(self.provider, tuple) else (self.provider,)


def _drain(stream: Any) -> None:
    for _ in stream:
        pass


def _expect_error(call: Callable[[], Any]) -> None:
    import anthropic
    import httpx2
    import openai

    with pytest.raises((openai.APIError, anthropic.APIError, httpx2.HTTPError)):
        call()


# OpenAI chat


def chat_params(c: Clients) -> None:
    c.openai.chat.completions.create(
        model=CHAT_MODEL,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": "Tell me about Paris", "name": "ann"},
        ],
        temperature=0.2,
        top_p=0.9,
        max_completion_tokens=64,
        seed=7,
        stop=["END", "STOP"],
        frequency_penalty=0.1,
        presence_penalty=0,
        n=2,
        response_format={"type": "json_object"},
        service_tier="default",
    )


def chat_ints_for_floats(c: Clients) -> None:
    c.openai.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Hi"}],
        temperature=1,
        top_p=1,
        frequency_penalty=0,
        presence_penalty=1,
        stop="END",
        max_tokens=3,
    )


def chat_stream_usage(c: Clients) -> None:
    _drain(
        c.openai.chat.completions.create(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": "Stream to me about Rome"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )


def chat_stream_estimated(c: Clients) -> None:
    _drain(
        c.openai.chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "Hello"}], stream=True
        )
    )


def chat_stream_closed_early(c: Clients) -> None:
    stream = c.openai.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "Hello there"}], stream=True
    )
    next(iter(stream))
    stream.close()


def chat_tools(c: Clients) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Oslo?"}]
    first = c.openai.chat.completions.create(
        model=CHAT_MODEL, messages=messages, tools=[WEATHER_TOOL]
    )
    call = first.choices[0].message.tool_calls[0]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 4}'},
    ]
    c.openai.chat.completions.create(model=CHAT_MODEL, messages=messages, tools=[WEATHER_TOOL])


def chat_tools_stream(c: Clients) -> None:
    _drain(
        c.openai.chat.completions.create(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": "Weather in Lima?"}],
            tools=[WEATHER_TOOL],
            stream=True,
            stream_options={"include_usage": True},
        )
    )


def chat_refusal(c: Clients) -> None:
    c.openai.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "Please refuse this."}]
    )


def chat_multimodal(c: Clients) -> None:
    c.openai.chat.completions.create(
        model=CHAT_MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{TINY_PNG}"},
                    },
                ],
            }
        ],
    )


def chat_truncated(c: Clients) -> None:
    history = [{"role": "user", "content": f"message number {i} " + "word " * 60} for i in range(8)]
    c.openai.chat.completions.create(model=CHAT_MODEL, messages=history)


def chat_business_context(c: Clients) -> None:
    from llmtap.context import context

    with context(
        user_id="u-1",
        session_id="s-1",
        feature="search",
        prompt_name="greet",
        prompt_version="3",
        metadata={"tenant": "acme", "tier": 2, "beta": True},
    ):
        c.openai.chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "Hi"}]
        )


def chat_async(c: Clients) -> None:
    async def go() -> None:
        client = c.async_openai()
        try:
            await client.chat.completions.create(
                model=CHAT_MODEL,
                messages=[{"role": "user", "content": "async hi"}],
                temperature=0.5,
            )
            stream = await client.chat.completions.create(
                model=CHAT_MODEL,
                messages=[{"role": "user", "content": "async stream"}],
                stream=True,
            )
            async for _ in stream:
                pass
        finally:
            await client.close()

    asyncio.run(go())


def chat_errors(c: Clients) -> None:
    for scenario in ("rate_limit", "server_error", "bad_request", "not_found"):
        _expect_error(
            lambda s=scenario: c.openai.chat.completions.create(
                model=f"devserver-{s}", messages=[{"role": "user", "content": "x"}]
            )
        )


def chat_stream_errors(c: Clients) -> None:
    for scenario in ("broken_stream", "stream_error"):
        _expect_error(
            lambda s=scenario: _drain(
                c.openai.chat.completions.create(
                    model=f"devserver-{s}:2",
                    messages=[{"role": "user", "content": "x"}],
                    stream=True,
                )
            )
        )


def chat_parse(c: Clients) -> None:
    from pydantic import BaseModel

    class City(BaseModel):
        name: str
        country: str

    c.openai.chat.completions.parse(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "A city in Peru"}],
        response_format=City,
    )


# OpenAI Responses


def responses_basic(c: Clients) -> None:
    c.openai.responses.create(
        model=CHAT_MODEL,
        instructions="Be brief.",
        input="Tell me about Lisbon",
        temperature=0.3,
        top_p=1,
        max_output_tokens=100,
    )


def responses_items(c: Clients) -> None:
    c.openai.responses.create(
        model=CHAT_MODEL,
        input=[
            {"role": "developer", "content": "Answer plainly."},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Describe Madrid"},
                    {"type": "input_image", "image_url": "https://example.com/m.png"},
                ],
            },
        ],
        text={"format": {"type": "json_object"}},
    )


def responses_stream(c: Clients) -> None:
    _drain(c.openai.responses.create(model=CHAT_MODEL, input="Stream about Berlin", stream=True))


def responses_tools(c: Clients) -> None:
    first = c.openai.responses.create(
        model=CHAT_MODEL, input="Weather in Quito?", tools=[RESPONSES_TOOL]
    )
    call = next(item for item in first.output if item.type == "function_call")
    c.openai.responses.create(
        model=CHAT_MODEL,
        input=[
            {"role": "user", "content": "Weather in Quito?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 14}'},
        ],
        tools=[RESPONSES_TOOL],
    )


def responses_reasoning(c: Clients) -> None:
    c.openai.responses.create(
        model="gpt-5", input="Think about Cairo", reasoning={"effort": "low", "summary": "auto"}
    )
    _drain(
        c.openai.responses.create(
            model="gpt-5",
            input="Think about Delhi",
            reasoning={"effort": "low", "summary": "auto"},
            stream=True,
        )
    )


def responses_errors(c: Clients) -> None:
    _expect_error(lambda: c.openai.responses.create(model="devserver-server_error", input="x"))
    _expect_error(
        lambda: _drain(
            c.openai.responses.create(model="devserver-broken_stream:2", input="x", stream=True)
        )
    )


# OpenAI embeddings


def embeddings_basic(c: Clients) -> None:
    c.openai.embeddings.create(model="text-embedding-3-small", input="hello world")
    c.openai.embeddings.create(
        model="text-embedding-3-small", input=["a", "b"], dimensions=64, encoding_format="float"
    )


def embeddings_error(c: Clients) -> None:
    _expect_error(lambda: c.openai.embeddings.create(model="devserver-rate_limit", input="x"))


# Anthropic


def anthropic_basic(c: Clients) -> None:
    c.anthropic.messages.create(
        model=CLAUDE,
        max_tokens=200,
        system="You are terse.",
        messages=[{"role": "user", "content": "Tell me about Kyoto"}],
        stop_sequences=["END"],
    )


def anthropic_stream(c: Clients) -> None:
    _drain(
        c.anthropic.messages.create(
            model=CLAUDE,
            max_tokens=200,
            messages=[{"role": "user", "content": "Stream Kyoto"}],
            stream=True,
        )
    )
    with c.anthropic.messages.stream(
        model=CLAUDE, max_tokens=200, messages=[{"role": "user", "content": "Helper stream"}]
    ) as stream:
        stream.get_final_message()


def anthropic_tools(c: Clients) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Cusco?"}]
    first = c.anthropic.messages.create(
        model=CLAUDE, max_tokens=200, messages=messages, tools=[ANTHROPIC_TOOL]
    )
    use = next(block for block in first.content if block.type == "tool_use")
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "9 C"}],
        },
    ]
    c.anthropic.messages.create(
        model=CLAUDE, max_tokens=200, messages=messages, tools=[ANTHROPIC_TOOL]
    )


def anthropic_thinking(c: Clients) -> None:
    c.anthropic.messages.create(
        model=CLAUDE,
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Think about Lima"}],
    )


def anthropic_errors(c: Clients) -> None:
    _expect_error(
        lambda: c.anthropic.messages.create(
            model="devserver-overloaded", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    )
    _expect_error(
        lambda: _drain(
            c.anthropic.messages.create(
                model="devserver-stream_error:2",
                max_tokens=10,
                messages=[{"role": "user", "content": "x"}],
                stream=True,
            )
        )
    )


# the other SDKs: a plain call, a stream, a tool round trip, embeddings, rerank, errors, as
# each has them (model names and client setups as in their own tests)

KB = {
    "d1": "Refunds take five days.",
    "d2": "Shipping is free over fifty euros.",
    "d3": "Support answers within a day.",
}
VECTORS = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.8, 0.0]]
SYSTEM_AND_USER = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Tell me about Paris"},
]


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def _fails(call: Callable[[], Any]) -> None:
    """The SDK's own error (each SDK has its classes; which one is its own tests' concern)."""
    with pytest.raises(Exception) as raised:
        call()
    assert not isinstance(raised.value, AssertionError)


def _openai_style_tools(create: Callable[..., Any], model: str, city: str) -> None:
    """A tool call and the follow-up with its result, through an OpenAI-shaped SDK."""
    messages: list[dict[str, Any]] = _user(f"Weather in {city}?")
    first = create(model=model, messages=messages, tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 4}'},
    ]
    create(model=model, messages=messages, tools=[WEATHER_TOOL])


# Mistral
MISTRAL = "mistral-small-latest"


def mistral_chat(c: Clients) -> None:
    c.mistral.chat.complete(
        model=MISTRAL, messages=SYSTEM_AND_USER, temperature=0.3, top_p=0.9, max_tokens=64
    )
    _drain(c.mistral.chat.stream(model=MISTRAL, messages=_user("Stream about Nice")))


def mistral_tools(c: Clients) -> None:
    def create(**kwargs: Any) -> Any:
        return c.mistral.chat.complete(**kwargs)

    messages: list[Any] = _user("Weather in Paris?")
    first = create(model=MISTRAL, messages=messages, tools=[WEATHER_TOOL], tool_choice="any")
    call = first.choices[0].message.tool_calls[0]
    messages += [
        first.choices[0].message,
        {"role": "tool", "name": "get_weather", "content": "18 C", "tool_call_id": call.id},
    ]
    create(model=MISTRAL, messages=messages, tools=[WEATHER_TOOL])
    _drain(
        c.mistral.chat.stream(
            model=MISTRAL, messages=_user("Weather in Oslo"), tools=[WEATHER_TOOL]
        )
    )


def mistral_fim_agents(c: Clients) -> None:
    c.mistral.fim.complete(
        model="codestral-latest", prompt="def add(a, b):", suffix="return c", max_tokens=50
    )
    _drain(c.mistral.fim.stream(model="codestral-latest", prompt="def f():"))
    c.mistral.agents.complete(agent_id="ag:0123", messages=_user("hi agent"))


def mistral_embeddings(c: Clients) -> None:
    c.mistral.embeddings.create(model="mistral-embed", inputs=["one", "two"])


def mistral_errors(c: Clients) -> None:
    _fails(lambda: c.mistral.chat.complete(model="devserver-rate_limit", messages=_user("x")))
    _fails(
        lambda: _drain(
            c.mistral.chat.stream(model="devserver-broken_stream:2", messages=_user("a b c"))
        )
    )


# Cohere
COMMAND = "command-a-03-2025"


def cohere_chat(c: Clients) -> None:
    c.cohere.chat(model=COMMAND, messages=SYSTEM_AND_USER, temperature=0.3, max_tokens=64)
    _drain(c.cohere.chat_stream(model=COMMAND, messages=_user("Stream about Bonn")))


def cohere_tools(c: Clients) -> None:
    import cohere

    first = c.cohere.chat(model=COMMAND, messages=_user("Weather in Rome"), tools=[WEATHER_TOOL])
    call = first.message.tool_calls[0]
    c.cohere.chat(
        model=COMMAND,
        tools=[WEATHER_TOOL],
        messages=[
            cohere.UserChatMessageV2(content="Weather in Rome"),
            cohere.AssistantChatMessageV2(tool_plan=first.message.tool_plan, tool_calls=[call]),
            cohere.ToolChatMessageV2(
                tool_call_id=call.id,
                content=[{"type": "document", "document": {"data": {"temp": "21C"}, "id": "w1"}}],
            ),
        ],
    )
    _drain(
        c.cohere.chat_stream(model=COMMAND, messages=_user("Weather in Oslo"), tools=[WEATHER_TOOL])
    )


def cohere_embed_rerank(c: Clients) -> None:
    c.cohere.embed(
        model="embed-v4.0",
        input_type="search_document",
        texts=["alpha", "beta"],
        embedding_types=["float"],
    )
    c.cohere.rerank(
        model="rerank-v3.5", query="capital of France", documents=list(KB.values()), top_n=2
    )


def cohere_errors(c: Clients) -> None:
    _fails(lambda: c.cohere.chat(model="devserver-rate_limit", messages=_user("x")))
    _fails(
        lambda: _drain(
            c.cohere.chat_stream(model="devserver-broken_stream:3", messages=_user("a b"))
        )
    )


# Ollama
LLAMA = "llama3.2"


def ollama_chat(c: Clients) -> None:
    c.ollama.chat(model=LLAMA, messages=SYSTEM_AND_USER, options={"temperature": 0.3, "top_k": 40})
    _drain(c.ollama.chat(model=LLAMA, messages=_user("Stream about Bern"), stream=True))
    c.ollama.generate(model=LLAMA, prompt="Say hi", system="Be brief.")


def ollama_tools(c: Clients) -> None:
    first = c.ollama.chat(model=LLAMA, messages=_user("Weather in Paris?"), tools=[WEATHER_TOOL])
    follow_up = [
        *_user("Weather in Paris?"),
        first.message,
        {"role": "tool", "content": "18 degrees", "tool_name": "get_weather"},
    ]
    c.ollama.chat(model=LLAMA, messages=follow_up, tools=[WEATHER_TOOL])


def ollama_embed(c: Clients) -> None:
    c.ollama.embed(model="nomic-embed-text", input=["one", "two"])


def ollama_errors(c: Clients) -> None:
    _fails(lambda: c.ollama.chat(model="devserver-not_found", messages=_user("Hi")))
    _fails(
        lambda: _drain(
            c.ollama.chat(model="devserver-broken_stream:3", messages=_user("Hi"), stream=True)
        )
    )


# Groq
GROQ = "llama-3.3-70b-versatile"


def groq_chat(c: Clients) -> None:
    c.groq.chat.completions.create(
        model=GROQ, messages=SYSTEM_AND_USER, temperature=0.3, max_tokens=64, seed=3
    )
    _drain(c.groq.chat.completions.create(model=GROQ, messages=_user("Stream"), stream=True))


def groq_tools(c: Clients) -> None:
    _openai_style_tools(c.groq.chat.completions.create, GROQ, "Oslo")


def groq_embeddings(c: Clients) -> None:
    c.groq.embeddings.create(model="nomic-embed-text-v1_5", input=["a cat", "a dog"])


def groq_errors(c: Clients) -> None:
    _fails(
        lambda: c.groq.chat.completions.create(model="devserver-rate_limit", messages=_user("x"))
    )
    _fails(
        lambda: _drain(
            c.groq.chat.completions.create(
                model="devserver-broken_stream:2", messages=_user("s"), stream=True
            )
        )
    )


# Together
LLAMA_TURBO = "meta-llama/Llama-3.3-70B-Instruct-Turbo"


def together_chat(c: Clients) -> None:
    c.together.chat.completions.create(
        model=LLAMA_TURBO, messages=SYSTEM_AND_USER, temperature=0.3, max_tokens=64
    )
    _drain(c.together.chat.completions.create(model=LLAMA_TURBO, messages=_user("s"), stream=True))
    c.together.completions.create(model="meta-llama/Llama-2-70b-hf", prompt="Once upon a time")


def together_tools(c: Clients) -> None:
    _openai_style_tools(c.together.chat.completions.create, LLAMA_TURBO, "Lima")


def together_embed_rerank(c: Clients) -> None:
    c.together.embeddings.create(model="BAAI/bge-base-en-v1.5", input=["a cat", "a dog"])
    c.together.rerank.create(
        model="Salesforce/Llama-Rank-V1",
        query="capital of France",
        documents=["Berlin is in Germany", "Paris is the capital of France"],
        top_n=2,
    )


def together_errors(c: Clients) -> None:
    _fails(
        lambda: c.together.chat.completions.create(
            model="devserver-server_error", messages=_user("x")
        )
    )
    _fails(lambda: c.together.embeddings.create(model="devserver-auth", input="x"))


# LiteLLM (the OpenAI and Anthropic protocols of the dev server, as in its own tests)


def _litellm_openai(c: Clients, model: str = "openai/gpt-4o-mini") -> dict[str, Any]:
    return {"model": model, "api_base": c.devserver.openai_base_url, "api_key": "k"}


def litellm_chat(c: Clients) -> None:
    c.litellm.completion(**_litellm_openai(c), messages=SYSTEM_AND_USER, temperature=0.3)
    _drain(
        c.litellm.completion(
            **_litellm_openai(c),
            messages=_user("Stream about Rome"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    c.litellm.completion(
        model="anthropic/claude-sonnet-4-6",
        api_base=c.devserver.anthropic_base_url,
        api_key="k",
        messages=SYSTEM_AND_USER,
        max_tokens=100,
    )


def litellm_tools(c: Clients) -> None:
    def create(model: str, **kwargs: Any) -> Any:
        return c.litellm.completion(**_litellm_openai(c), **kwargs)

    _openai_style_tools(create, "", "Quito")


def litellm_embedding(c: Clients) -> None:
    c.litellm.embedding(**_litellm_openai(c, "openai/text-embedding-3-small"), input=["a", "b"])


def litellm_errors(c: Clients) -> None:
    _fails(
        lambda: c.litellm.completion(
            **_litellm_openai(c, "openai/devserver-rate_limit"), messages=_user("x"), num_retries=0
        )
    )


# vector stores


def chroma_query(c: Clients) -> None:
    c.chroma.query(query_texts=["how long do refunds take?"], n_results=2)
    c.chroma.query(query_embeddings=[[0.1] * 9], n_results=1, include=["distances"])


def chroma_error(c: Clients) -> None:
    _fails(lambda: c.chroma.query(query_embeddings=[[0.1, 0.2]], n_results=1))  # wrong dimension


def qdrant_query(c: Clients) -> None:
    c.qdrant.query_points("kb", query=[0.9, 0.1, 0.0], limit=2)


def qdrant_error(c: Clients) -> None:
    _fails(lambda: c.qdrant.query_points("missing", query=[0.9, 0.1, 0.0]))


def pinecone_query(c: Clients) -> None:
    namespace = f"ns-{uuid.uuid4().hex[:8]}"
    vectors = [
        {"id": key, "values": vector, "metadata": {"text": text}}
        for (key, text), vector in zip(KB.items(), VECTORS, strict=True)
    ]
    index = c.pinecone_index()
    index.upsert(vectors=vectors, namespace=namespace)
    index.query(top_k=2, vector=[1.0, 0.1, 0.0], namespace=namespace, include_metadata=True)


def pinecone_error(c: Clients) -> None:
    _fails(lambda: c.pinecone_index("not_found").query(top_k=1, vector=[1.0, 0.0, 0.0]))


# google-genai (the Gemini Developer API)
GEMINI = "gemini-2.5-flash"


def gemini_generate(c: Clients) -> None:
    from google.genai import types

    config = types.GenerateContentConfig(
        system_instruction="Be terse.",
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        max_output_tokens=256,
        stop_sequences=["END"],
        seed=7,
    )
    c.gemini.models.generate_content(model=GEMINI, contents="Hello Paris", config=config)
    _drain(c.gemini.models.generate_content_stream(model=GEMINI, contents="Hello Rome"))


def gemini_tools(c: Clients) -> None:
    from google.genai import types

    declaration = types.FunctionDeclaration(
        name="lookup",
        description="Look things up",
        parameters=types.Schema(
            type="OBJECT", properties={"query": types.Schema(type="STRING")}, required=["query"]
        ),
    )
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[declaration])])
    response = c.gemini.models.generate_content(model=GEMINI, contents="Find Rome", config=config)
    follow = [
        types.UserContent(parts=[types.Part.from_text(text="Find Rome")]),
        response.candidates[0].content,
        types.Part.from_function_response(name="lookup", response={"result": "found"}),
    ]
    c.gemini.models.generate_content(model=GEMINI, contents=follow, config=config)


def _weather(city: str) -> str:
    """Weather for a city."""
    return f"sunny in {city}"


# older google-genai SDKs read a tool function's annotations as they are: real types, not the
# strings `from __future__ import annotations` leaves
_weather.__annotations__ = {"city": str, "return": str}


def gemini_automatic_tools(c: Clients) -> None:
    from google.genai import types

    config = types.GenerateContentConfig(tools=[_weather])
    c.gemini.models.generate_content(model=GEMINI, contents="Weather in Paris?", config=config)


def gemini_embed(c: Clients) -> None:
    c.gemini.models.embed_content(model="gemini-embedding-001", contents=["one", "two words"])


def gemini_vertex(c: Clients) -> None:
    from google import genai
    from google.genai import types

    http = types.HttpOptions(base_url=c.devserver.base_url)
    client = genai.Client(vertexai=True, api_key="k", http_options=http)  # express mode
    client.models.generate_content(model=GEMINI, contents="Hello Vertex")
    client.models.embed_content(model="gemini-embedding-001", contents=["one"])
    if hasattr(client, "close"):  # SDKs before 1.2x have no close()
        client.close()


def gemini_errors(c: Clients) -> None:
    _fails(lambda: c.gemini.models.generate_content(model="devserver-rate_limit", contents="x"))
    _fails(
        lambda: _drain(
            c.gemini.models.generate_content_stream(
                model="devserver-broken_stream:2", contents="Hello Paris"
            )
        )
    )


# Bedrock (boto3 bedrock-runtime)
BEDROCK_CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
BEDROCK_TOOL = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Weather for a city",
        "inputSchema": {"json": WEATHER_TOOL["function"]["parameters"]},
    }
}


def _bedrock_user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": text}]}]


def bedrock_converse(c: Clients) -> None:
    c.bedrock.converse(
        modelId=BEDROCK_CLAUDE,
        messages=_bedrock_user("Hello there Ada"),
        system=[{"text": "Be terse."}],
        inferenceConfig={"maxTokens": 200, "temperature": 0.5, "topP": 0.9, "stopSequences": ["X"]},
    )
    _drain(
        c.bedrock.converse_stream(modelId=BEDROCK_CLAUDE, messages=_bedrock_user("Hi Rome"))[
            "stream"
        ]
    )


def bedrock_tools(c: Clients) -> None:
    tools = {"tools": [BEDROCK_TOOL]}
    question = _bedrock_user("Weather in Paris?")
    first = c.bedrock.converse(modelId=BEDROCK_CLAUDE, messages=question, toolConfig=tools)
    use = next(b["toolUse"] for b in first["output"]["message"]["content"] if "toolUse" in b)
    result = {"toolUseId": use["toolUseId"], "content": [{"json": {"sky": "clear"}}]}
    c.bedrock.converse(
        modelId=BEDROCK_CLAUDE,
        messages=[
            *question,
            first["output"]["message"],
            {"role": "user", "content": [{"toolResult": result}]},
        ],
        toolConfig=tools,
    )


def bedrock_invoke(c: Clients) -> None:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "system": "Be terse.",
        "messages": [{"role": "user", "content": "Hi Ann"}],
    }
    model = "anthropic.claude-3-haiku-20240307-v1:0"
    c.bedrock.invoke_model(modelId=model, body=json.dumps(body))["body"].read()
    llama = {"prompt": "Hi Ann", "max_gen_len": 100}
    _drain(
        c.bedrock.invoke_model_with_response_stream(
            modelId="meta.llama3-1-8b-instruct-v1:0", body=json.dumps(llama)
        )["body"]
    )


def bedrock_embeddings(c: Clients) -> None:
    c.bedrock.invoke_model(
        modelId="amazon.titan-embed-text-v2:0",
        body=json.dumps({"inputText": "hello world", "dimensions": 256}),
    )["body"].read()


def bedrock_errors(c: Clients) -> None:
    _fails(lambda: c.bedrock.converse(modelId="devserver-rate_limit", messages=_bedrock_user("hi")))
    _fails(
        lambda: _drain(
            c.bedrock.converse_stream(
                modelId="devserver-broken_stream:2", messages=_bedrock_user("hi")
            )["stream"]
        )
    )


# MCP (the mcp SDK's client and server in one process, JSON-RPC over memory streams)


def _mcp(c: Clients, work: Callable[[Any], Any]) -> None:
    async def go() -> None:
        server = c.mcp()
        try:  # mcp 2.x
            from mcp import Client

            async with Client(server, mode="legacy") as session:
                await work(session)
        except ImportError:  # mcp 1.x
            from mcp.shared.memory import create_connected_server_and_client_session

            async with create_connected_server_and_client_session(server._mcp_server) as session:
                await work(session)

    asyncio.run(go())


def mcp_tools(c: Clients) -> None:
    async def work(session: Any) -> None:
        await session.list_tools()
        await session.call_tool("add", {"a": 2, "b": 3})

    _mcp(c, work)


def mcp_resources_prompts(c: Clients) -> None:
    async def work(session: Any) -> None:
        await session.read_resource("notes://today")
        await session.get_prompt("greet", {"name": "Ann"})

    _mcp(c, work)


def mcp_errors(c: Clients) -> None:
    from mcp.shared import exceptions

    error = getattr(exceptions, "MCPError", None) or exceptions.McpError

    async def work(session: Any) -> None:
        await session.list_tools()
        result = await session.call_tool("boom", {"x": "luck"})  # a tool error: isError
        assert getattr(result, "is_error", None) or getattr(result, "isError", None)
        with pytest.raises(error):  # a JSON-RPC error
            await session.read_resource("notes://missing")

    _mcp(c, work)


# OpenAI Agents SDK (its OpenAI models on an AsyncOpenAI client; only the agents instrumented)

AGENTS_QUESTION = "What is the weather in Paris?"


def _agents(c: Clients, work: Callable[[Any, Any], Any]) -> None:
    agents = c.agents

    async def go() -> None:
        client = c.agents_client()
        try:
            await work(agents, client)
        finally:
            await client.close()

    asyncio.run(go())


def _agents_weather(agents: Any, model: Any, **kwargs: Any) -> Any:
    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    return agents.Agent(
        name="Weather",
        instructions="Answer with the tool.",
        tools=[get_weather],
        model=model,
        **kwargs,
    )


def agents_tools(c: Clients) -> None:
    async def work(agents: Any, client: Any) -> None:
        responses = agents.OpenAIResponsesModel(model=CHAT_MODEL, openai_client=client)
        config = agents.RunConfig(workflow_name="Weather desk", group_id="thread-1")
        await agents.Runner.run(
            _agents_weather(agents, responses), AGENTS_QUESTION, run_config=config
        )

    _agents(c, work)


def agents_chat_completions(c: Clients) -> None:
    async def work(agents: Any, client: Any) -> None:
        chat = agents.OpenAIChatCompletionsModel(model=CHAT_MODEL, openai_client=client)
        await agents.Runner.run(_agents_weather(agents, chat), AGENTS_QUESTION)

    _agents(c, work)


def _agents_guardrail(agents: Any, trip: bool) -> Any:
    @agents.input_guardrail(name="no_secrets", run_in_parallel=False)
    async def no_secrets(ctx: Any, agent: Any, user_input: Any) -> Any:
        return agents.GuardrailFunctionOutput(output_info={"ok": 1}, tripwire_triggered=trip)

    return no_secrets


def agents_handoff_guardrail(c: Clients) -> None:
    async def work(agents: Any, client: Any) -> None:
        model = agents.OpenAIResponsesModel(model=CHAT_MODEL, openai_client=client)
        billing = agents.Agent(
            name="Billing", instructions="Answer billing questions.", model=model
        )
        triage = agents.Agent(
            name="Triage",
            instructions="Route the user.",
            handoffs=[billing],
            model=model,
            input_guardrails=[_agents_guardrail(agents, False)],
        )
        await agents.Runner.run(triage, "I was charged twice")

    _agents(c, work)


def agents_errors(c: Clients) -> None:
    import openai

    async def work(agents: Any, client: Any) -> None:
        @agents.function_tool
        def broken_lookup(city: str) -> str:
            """A lookup that fails."""
            raise LookupError(f"no data for {city}")

        model = agents.OpenAIResponsesModel(model=CHAT_MODEL, openai_client=client)
        await agents.Runner.run(
            agents.Agent(name="Weather", tools=[broken_lookup], model=model), AGENTS_QUESTION
        )
        tripped = _agents_weather(agents, model, input_guardrails=[_agents_guardrail(agents, True)])
        with pytest.raises(agents.InputGuardrailTripwireTriggered):
            await agents.Runner.run(tripped, AGENTS_QUESTION)
        broken = agents.OpenAIResponsesModel(model="devserver-server_error", openai_client=client)
        with pytest.raises(openai.InternalServerError):
            await agents.Runner.run(agents.Agent(name="Weather", model=broken), AGENTS_QUESTION)

    _agents(c, work)


# LlamaIndex (llama-index-llms-anthropic and -embeddings-ollama on the dev server; only
# LlamaIndex instrumented, so its own spans record the model calls)

LLAMA_TEXTS = ("Paris is the capital of France.", "Berlin is the capital of Germany.")
LLAMA_QUESTION = "What is the capital of France?"


def _llama_index(embed_model: Any) -> Any:
    from llama_index.core import Document, VectorStoreIndex

    docs = [Document(text=t, id_=f"doc-{i}") for i, t in enumerate(LLAMA_TEXTS)]
    return VectorStoreIndex.from_documents(docs, embed_model=embed_model)


def _llama_run(workflow: Any, **kwargs: Any) -> Any:
    async def go() -> Any:
        return await workflow.run(**kwargs)

    return asyncio.run(go())


def _llama_integrations() -> None:
    """Skips where LlamaIndex's Anthropic and Ollama integrations do not import: the releases
    pip resolves beside llama-index-core 0.12 (the oldest run) predate anthropic 2."""
    try:
        import llama_index.embeddings.ollama
        import llama_index.llms.anthropic  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"llama-index-llms-anthropic / -embeddings-ollama do not import here: {exc}")


def llama_index_rag(c: Clients) -> None:
    _llama_integrations()
    from llama_index.core.postprocessor import SimilarityPostprocessor
    from llama_index.embeddings.ollama import OllamaEmbedding

    embed = OllamaEmbedding(model_name="nomic-embed-text", base_url=c.devserver.base_url)
    engine = _llama_index(embed).as_query_engine(
        llm=c.llama_claude(),
        similarity_top_k=2,
        node_postprocessors=[SimilarityPostprocessor(similarity_cutoff=0.0)],
    )
    engine.query(LLAMA_QUESTION)


def llama_index_agent(c: Clients) -> None:
    _llama_integrations()
    try:
        from llama_index.core.agent.workflow import FunctionAgent
    except ImportError:
        pytest.skip(
            "this llama-index-core has no workflow agents (llama_index.core.agent.workflow)"
        )
    from llama_index.core.tools import FunctionTool

    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    agent = FunctionAgent(
        name="weather",
        description="Tells the weather.",
        tools=[FunctionTool.from_defaults(get_weather)],
        llm=c.llama_claude(),
        system_prompt="Answer with the tool.",
    )
    _llama_run(agent, user_msg="Weather in Paris?")


def llama_index_mock_models(c: Clients) -> None:
    """LlamaIndex's MockLLM and MockEmbedding: models no provider SDK serves."""
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.llms import MockLLM

    index = _llama_index(MockEmbedding(embed_dim=8))
    index.as_query_engine(llm=MockLLM(max_tokens=4)).query(LLAMA_QUESTION)


def llama_index_errors(c: Clients) -> None:
    import anthropic
    from llama_index.core.base.llms.types import ChatMessage

    with pytest.raises(anthropic.InternalServerError):
        # LlamaIndex checks the model's name: the dev server's scenario comes in a header
        failing = c.llama_claude(default_headers={"x-devserver-scenario": "server_error"})
        failing.chat([ChatMessage(role="user", content="hi")])


# LangChain / LangGraph (langchain-openai and -anthropic on the dev server; only LangChain
# instrumented, so its own chat spans record the model calls)

LC_DOCS = ("The X200 router has a two-year warranty.", "Returns are accepted within 30 days.")


def _lc_weather_tool() -> Any:
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """The weather of a city."""
        return f"sunny in {city}"

    return get_weather


def langchain_agent(c: Clients) -> None:
    import warnings

    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():  # moved to langchain.agents in LangGraph 1.0
        warnings.simplefilter("ignore")
        agent = create_react_agent(c.lc_openai(), [_lc_weather_tool()], name="weather-agent")
    agent.invoke(
        {"messages": [("user", "What is the weather in Paris?")]},
        config={"configurable": {"thread_id": "t-1"}},
    )


def langchain_rag(c: Clients) -> None:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import RunnablePassthrough

    class Shelf(BaseRetriever):
        """Two fixed documents with scores."""

        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun
        ) -> list[Document]:
            return [
                Document(page_content=text, id=f"doc-{i}", metadata={"score": 0.9 - i / 2})
                for i, text in enumerate(LC_DOCS)
            ]

    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from these documents:\n{context}"), ("human", "{question}")]
    )
    inputs = {
        "context": Shelf() | (lambda docs: "\n".join(d.page_content for d in docs)),
        "question": RunnablePassthrough(),
    }
    chain = inputs | prompt | c.lc_anthropic() | StrOutputParser()
    chain.with_config(run_name="answer-question").invoke("How long is the X200 warranty?")


def langchain_fake_models(c: Clients) -> None:
    """langchain-core's fake chat model and LLM: models no provider SDK serves."""
    from langchain_core.language_models.fake import FakeListLLM
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{question}")])
    chain = prompt | FakeListChatModel(responses=["fine"]) | StrOutputParser()
    chain.with_config(run_name="ask").invoke({"question": "how are you?"})
    FakeListLLM(responses=["four"]).invoke("two plus two?")


def langchain_errors(c: Clients) -> None:
    import openai
    from langchain_core.tools import tool

    @tool
    def broken(city: str) -> str:
        """Always fails."""
        raise RuntimeError("no weather today")

    with pytest.raises(RuntimeError):
        broken.invoke({"city": "Paris"})
    with pytest.raises(openai.InternalServerError):
        c.lc_openai("devserver-server_error").invoke("hi")


# PydanticAI (its own spans, switched on by llmtap; its OpenAI and Anthropic models on the dev
# server; only PydanticAI instrumented)


def _pydantic_weather(model: Any) -> Any:
    from pydantic_ai import Agent

    agent = Agent(model, name="weather", instructions="Answer in one sentence.")

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    return agent


def pydantic_ai_tools(c: Clients) -> None:
    _pydantic_weather(c.pydantic_openai()).run_sync("What is the weather in Paris?")


def pydantic_ai_anthropic_stream(c: Clients) -> None:
    from importlib.metadata import version

    from packaging.version import Version

    if Version(version("pydantic-ai-slim")) < Version("2.60"):
        pytest.skip("PydanticAI's AnthropicModel works with the anthropic 2.x SDK from 2.60 on")
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.providers.anthropic import AnthropicProvider

    provider = AnthropicProvider(base_url=c.devserver.anthropic_base_url, api_key="k")
    agent = _pydantic_weather(AnthropicModel(CLAUDE, provider=provider))

    async def go() -> None:
        async with agent.run_stream("What is the weather in Rome?") as stream:
            async for _ in stream.stream_text(delta=True):
                pass

    asyncio.run(go())


def pydantic_ai_errors(c: Clients) -> None:
    from pydantic_ai import Agent

    agent = Agent(c.pydantic_openai("devserver-server_error"), name="weather", retries=0)
    agent.model.client.max_retries = 0
    with pytest.raises(Exception, match="500"):
        agent.run_sync("hello")


# what the agent frameworks' scenarios expect and have found --------------------------------

INFERENCE_METRICS = frozenset({semconv.METRIC_OPERATION_DURATION, semconv.METRIC_TOKEN_USAGE})


def _unregistered(attribute: str) -> str:
    """An attribute, or every attribute under a prefix ending in a dot, unknown to v1.41."""
    more = r"[\w.]+" if attribute.endswith(".") else ""
    return rf"{re.escape(attribute)}{more}=.*: not in the semconv registry"


# problems the scenarios found (known, reported; each must still occur, see the test):
# a tool's plain-text result recorded as it is, not as JSON (`any`: a JSON string on spans)
TOOL_RESULT_NOT_JSON = r"gen_ai\.tool\.call\.result='[^']*': not valid JSON"

# PydanticAI makes the spans and metrics itself (llmtap turns them on, with its providers)
PYDANTIC_AI_SCOPES = ("llmtap", "pydantic-ai")
# (llmtap renames or drops its deprecated and Logfire-only span attributes as they are set,
# and adds error.type and the duration metric: what is left is on its metrics and its run ids)
PYDANTIC_AI_EVERY_RUN = (  # on every span of a run, failed or not
    _unregistered("gen_ai.agent.call.id"),
)
PYDANTIC_AI_OWN = (  # and on a run that ended well, with a tool call
    *PYDANTIC_AI_EVERY_RUN,
    r"gen_ai\.system='\w+': deprecated in semconv v1\.41",  # on its token metric
    TOOL_RESULT_NOT_JSON,
    r"attributes not defined for it: \['gen_ai\.system'\]",
    r"metric operation\.cost: not in metrics\.yaml",
)

TOGETHER = "together_ai"

SCENARIOS = [
    Scenario("openai-chat-params", OPENAI, chat_params),
    Scenario("openai-chat-int-params", OPENAI, chat_ints_for_floats),
    Scenario("openai-chat-stream-usage", OPENAI, chat_stream_usage),
    Scenario("openai-chat-stream-estimated", OPENAI, chat_stream_estimated),
    Scenario("openai-chat-stream-closed-early", OPENAI, chat_stream_closed_early),
    Scenario("openai-chat-tools", OPENAI, chat_tools, spans=2),
    Scenario("openai-chat-tools-stream", OPENAI, chat_tools_stream),
    Scenario("openai-chat-refusal", OPENAI, chat_refusal),
    Scenario("openai-chat-multimodal", OPENAI, chat_multimodal),
    Scenario(
        "openai-chat-truncated",
        OPENAI,
        chat_truncated,
        settings={"limits": {"max_part_chars": 80, "max_attribute_chars": 600}},
    ),
    Scenario("openai-chat-business-context", OPENAI, chat_business_context),
    Scenario("openai-chat-async", OPENAI, chat_async, spans=2),
    Scenario("openai-chat-parse", OPENAI, chat_parse),
    Scenario("openai-chat-errors", OPENAI, chat_errors, spans=4, errors=4),
    Scenario("openai-chat-stream-errors", OPENAI, chat_stream_errors, spans=2, errors=2),
    Scenario("openai-responses-basic", OPENAI, responses_basic),
    Scenario("openai-responses-items", OPENAI, responses_items),
    Scenario("openai-responses-stream", OPENAI, responses_stream),
    Scenario("openai-responses-tools", OPENAI, responses_tools, spans=2),
    Scenario("openai-responses-reasoning", OPENAI, responses_reasoning, spans=2),
    Scenario("openai-responses-errors", OPENAI, responses_errors, spans=2, errors=2),
    Scenario("openai-embeddings", OPENAI, embeddings_basic, spans=2),
    Scenario("openai-embeddings-error", OPENAI, embeddings_error, errors=1),
    Scenario("anthropic-basic", ANTHROPIC, anthropic_basic),
    Scenario("anthropic-stream", ANTHROPIC, anthropic_stream, spans=2),
    Scenario("anthropic-tools", ANTHROPIC, anthropic_tools, spans=2),
    Scenario("anthropic-thinking", ANTHROPIC, anthropic_thinking),
    Scenario("anthropic-errors", ANTHROPIC, anthropic_errors, spans=2, errors=2),
    Scenario("mistralai-chat", "mistral_ai", mistral_chat, spans=2, entry="mistralai"),
    Scenario("mistralai-tools", "mistral_ai", mistral_tools, spans=3, entry="mistralai"),
    Scenario("mistralai-fim-agents", "mistral_ai", mistral_fim_agents, spans=3, entry="mistralai"),
    Scenario("mistralai-embeddings", "mistral_ai", mistral_embeddings, entry="mistralai"),
    Scenario(
        "mistralai-errors", "mistral_ai", mistral_errors, spans=2, errors=2, entry="mistralai"
    ),
    Scenario("cohere-chat", "cohere", cohere_chat, spans=2),
    Scenario("cohere-tools", "cohere", cohere_tools, spans=3),
    Scenario("cohere-embed-rerank", "cohere", cohere_embed_rerank, spans=2),
    Scenario("cohere-errors", "cohere", cohere_errors, spans=2, errors=2),
    Scenario("ollama-chat", "ollama", ollama_chat, spans=3),
    Scenario("ollama-tools", "ollama", ollama_tools, spans=2),
    Scenario("ollama-embed", "ollama", ollama_embed),
    Scenario("ollama-errors", "ollama", ollama_errors, spans=2, errors=2),
    Scenario("groq-chat", "groq", groq_chat, spans=2),
    Scenario("groq-tools", "groq", groq_tools, spans=2),
    Scenario("groq-embeddings", "groq", groq_embeddings),
    Scenario("groq-errors", "groq", groq_errors, spans=2, errors=2),
    Scenario("together-chat", TOGETHER, together_chat, spans=3, entry="together"),
    Scenario("together-tools", TOGETHER, together_tools, spans=2, entry="together"),
    Scenario("together-embed-rerank", TOGETHER, together_embed_rerank, spans=2, entry="together"),
    Scenario("together-errors", TOGETHER, together_errors, spans=2, errors=2, entry="together"),
    Scenario("litellm-chat", ("openai", "anthropic"), litellm_chat, spans=3, entry="litellm"),
    Scenario("litellm-tools", OPENAI, litellm_tools, spans=2, entry="litellm"),
    Scenario("litellm-embedding", OPENAI, litellm_embedding, entry="litellm"),
    Scenario("litellm-errors", OPENAI, litellm_errors, errors=1, entry="litellm"),
    Scenario("google-genai-generate", "gcp.gemini", gemini_generate, spans=2, entry="google_genai"),
    Scenario("google-genai-tools", "gcp.gemini", gemini_tools, spans=2, entry="google_genai"),
    Scenario(
        "google-genai-automatic-tools",
        ("gcp.gemini", None),
        gemini_automatic_tools,
        spans=3,
        entry="google_genai",
    ),
    Scenario("google-genai-vertex", "gcp.vertex_ai", gemini_vertex, spans=2, entry="google_genai"),
    Scenario("google-genai-embed", "gcp.gemini", gemini_embed, entry="google_genai"),
    Scenario(
        "google-genai-errors", "gcp.gemini", gemini_errors, spans=2, errors=2, entry="google_genai"
    ),
    Scenario("bedrock-converse", "aws.bedrock", bedrock_converse, spans=2, entry="bedrock"),
    Scenario("bedrock-tools", "aws.bedrock", bedrock_tools, spans=2, entry="bedrock"),
    Scenario("bedrock-invoke", "aws.bedrock", bedrock_invoke, spans=2, entry="bedrock"),
    Scenario("bedrock-embeddings", "aws.bedrock", bedrock_embeddings, entry="bedrock"),
    Scenario("bedrock-errors", "aws.bedrock", bedrock_errors, spans=2, errors=2, entry="bedrock"),
    Scenario("chromadb-query", None, chroma_query, spans=2, entry="chromadb"),
    Scenario("chromadb-error", None, chroma_error, errors=1, entry="chromadb"),
    Scenario("qdrant-query", None, qdrant_query, entry="qdrant"),
    Scenario("qdrant-error", None, qdrant_error, errors=1, entry="qdrant"),
    Scenario("pinecone-query", None, pinecone_query, entry="pinecone"),
    Scenario("pinecone-error", None, pinecone_error, errors=1, entry="pinecone"),
    # (the client's initialized notification: a span on each side)
    Scenario("mcp-tools", None, mcp_tools, spans=8, entry="mcp", framework=True),
    Scenario(
        "mcp-resources-prompts", None, mcp_resources_prompts, spans=8, entry="mcp", framework=True
    ),
    Scenario("mcp-errors", None, mcp_errors, spans=10, errors=4, entry="mcp", framework=True),
    Scenario(
        "openai-agents-tools",
        OPENAI,
        agents_tools,
        spans=5,
        entry="openai_agents",
        framework=True,
        metrics=INFERENCE_METRICS,
    ),
    Scenario(
        "openai-agents-chat-completions",
        OPENAI,
        agents_chat_completions,
        spans=5,
        entry="openai_agents",
        framework=True,
        metrics=INFERENCE_METRICS,
    ),
    Scenario(
        "openai-agents-handoff-guardrail",
        OPENAI,
        agents_handoff_guardrail,
        spans=7,
        entry="openai_agents",
        framework=True,
        metrics=INFERENCE_METRICS,
    ),
    Scenario(
        "openai-agents-errors",
        OPENAI,
        agents_errors,
        spans=11,
        errors=4,
        entry="openai_agents",
        framework=True,
        metrics=INFERENCE_METRICS,
    ),
    Scenario(
        "llama-index-rag",
        ("anthropic", "ollama"),
        llama_index_rag,
        spans=6,
        entry="llama_index",
        framework=True,
        metrics=INFERENCE_METRICS,
    ),
    Scenario(
        "llama-index-agent",
        ANTHROPIC,
        llama_index_agent,
        spans=4,
        entry="llama_index",
        framework=True,
        metrics=INFERENCE_METRICS,
    ),
    Scenario(
        "llama-index-mock-models",
        OTHER_PROVIDER,
        llama_index_mock_models,
        spans=5,
        entry="llama_index",
        framework=True,
        metrics=frozenset({semconv.METRIC_OPERATION_DURATION}),
    ),
    Scenario(
        "llama-index-errors",
        ANTHROPIC,
        llama_index_errors,
        errors=1,
        entry="llama_index",
        framework=True,
        metrics=frozenset({semconv.METRIC_OPERATION_DURATION}),
    ),
    Scenario(
        "langchain-agent",
        OPENAI,
        langchain_agent,
        spans=4,
        entry="langchain",
        framework=True,
        metrics=INFERENCE_METRICS,
    ),
    Scenario(
        "langchain-rag",
        ANTHROPIC,
        langchain_rag,
        spans=3,
        entry="langchain",
        framework=True,
        metrics=INFERENCE_METRICS,
    ),
    Scenario(
        "langchain-fake-models",
        OTHER_PROVIDER,
        langchain_fake_models,
        spans=3,
        entry="langchain",
        framework=True,
        metrics=frozenset({semconv.METRIC_OPERATION_DURATION}),
    ),
    Scenario(
        "langchain-errors",
        OPENAI,
        langchain_errors,
        spans=2,
        errors=2,
        entry="langchain",
        framework=True,
        metrics=frozenset({semconv.METRIC_OPERATION_DURATION}),
    ),
    Scenario(
        "pydantic-ai-tools",
        OPENAI,
        pydantic_ai_tools,
        spans=4,
        entry="pydantic_ai",
        framework=True,
        scopes=PYDANTIC_AI_SCOPES,
        metrics=INFERENCE_METRICS | {"operation.cost"},
        known=PYDANTIC_AI_OWN,
    ),
    Scenario(
        "pydantic-ai-anthropic-stream",
        ANTHROPIC,
        pydantic_ai_anthropic_stream,
        spans=3,
        entry="pydantic_ai",
        framework=True,
        scopes=PYDANTIC_AI_SCOPES,
        metrics=INFERENCE_METRICS | {semconv.METRIC_TIME_TO_FIRST_CHUNK, "operation.cost"},
        known=(*PYDANTIC_AI_OWN, _unregistered(semconv.METRIC_TIME_TO_FIRST_CHUNK)),
    ),
    Scenario(
        "pydantic-ai-errors",
        OPENAI,
        pydantic_ai_errors,
        spans=2,
        errors=2,
        entry="pydantic_ai",
        framework=True,
        scopes=PYDANTIC_AI_SCOPES,
        metrics=frozenset({semconv.METRIC_OPERATION_DURATION}),
        known=PYDANTIC_AI_EVERY_RUN,
    ),
]


OPERATIONS = {
    semconv.OP_CHAT,
    semconv.OP_TEXT_COMPLETION,
    semconv.OP_GENERATE_CONTENT,
    semconv.OP_EMBEDDINGS,
    semconv.OP_RETRIEVAL,
    semconv.OP_EXECUTE_TOOL,  # google-genai's automatic function calling
    "rerank",
}


@pytest.fixture(scope="module")
def clients(devserver: Any) -> Iterator[Clients]:
    c = Clients(devserver)
    yield c
    c.close()


def _settings_fields(raw: dict[str, Any]) -> dict[str, Any]:
    from llmtap.config import ContentLimits

    fields = dict(raw)
    if "limits" in fields:
        fields["limits"] = ContentLimits(**fields["limits"])
    return fields


def _target(scenario: Scenario) -> str:
    from llmtap.instrumentation.registry import INSTRUMENTATIONS

    (entry,) = (i for i in INSTRUMENTATIONS if i.name == scenario.instrumentation)
    return entry.target


# an agent framework's spans that are no model call (the `llmtap.step.kind` ones aside)
FRAMEWORK_STEPS = frozenset(
    {semconv.OP_INVOKE_WORKFLOW, semconv.OP_INVOKE_AGENT, semconv.OP_EXECUTE_TOOL}
)


def framework_span_problem(attrs: Any, providers: tuple[str | None, ...]) -> str | None:
    """What is wrong with the operation and provider of an agent framework's span: a model
    call names one of the scenario's providers; workflow, agent, tool, retrieval and step
    spans (``llmtap.step.kind``: rerank, handoff, guardrail, ...) name none, except that an
    agent may sum up its model calls' provider; MCP request spans name none, and only
    ``tools/call`` has ``gen_ai.operation.name`` (MCP semconv v1.41)."""
    operation, provider = attrs.get(semconv.OPERATION), attrs.get(semconv.PROVIDER)
    if semconv.MCP_METHOD_NAME in attrs:
        tool_call = attrs[semconv.MCP_METHOD_NAME] == "tools/call"
        if operation != (semconv.OP_EXECUTE_TOOL if tool_call else None):
            return f"operation {operation!r} on an MCP {attrs[semconv.MCP_METHOD_NAME]} span"
        return None if provider is None else f"provider {provider!r} on an MCP span"
    if semconv.LLMTAP_STEP_KIND in attrs:
        if operation != attrs[semconv.LLMTAP_STEP_KIND]:
            return f"step span of operation {operation!r}"
        return None if provider is None else f"provider {provider!r} on a step span"
    if operation == semconv.OP_INVOKE_AGENT:
        return None if provider in (None, *providers) else f"agent of provider {provider!r}"
    if operation in FRAMEWORK_STEPS | {semconv.OP_RETRIEVAL}:
        return None if provider is None else f"provider {provider!r} on a {operation} span"
    if operation in semconv.INFERENCE_OPERATIONS | {semconv.OP_EMBEDDINGS}:
        return None if provider in providers else f"provider {provider!r} not {providers}"
    return f"operation {operation!r}"


def _span_problems(spans: Any) -> list[str]:
    problems = []
    for span in spans:
        problems += attribute_problems(dict(span.attributes or {}), f"span {span.name!r}")
        for event in span.events:
            problems += attribute_problems(
                dict(event.attributes or {}), f"span event {event.name!r}"
            )
    return problems


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_emitted_attributes_follow_the_registry(
    scenario: Scenario,
    clients: Clients,
    instrument: Any,
    span_exporter: Any,
    metric_reader: InMemoryMetricReader,
) -> None:
    instrument(_target(scenario), capture="span_only", **_settings_fields(scenario.settings))
    scenario.run(clients)
    tokens.flush()  # streams without usage end their span once the token estimate is in

    spans = [
        s
        for s in span_exporter.get_finished_spans()
        if s.instrumentation_scope.name in scenario.scopes
    ]
    assert len(spans) == scenario.spans, [s.name for s in spans]
    assert sum(semconv.ERROR_TYPE in s.attributes for s in spans) == scenario.errors
    for span in spans:
        attrs = span.attributes
        if scenario.framework:
            problem = framework_span_problem(attrs, scenario.providers)
            assert problem is None, f"{span.name}: {problem}"
        else:
            assert attrs.get(semconv.PROVIDER) in scenario.providers, span.name
            assert attrs[semconv.OPERATION] in OPERATIONS, span.name
        # content capture is on: successful inference spans carry their messages
        operation = attrs.get(semconv.OPERATION)
        failed = semconv.ERROR_TYPE in attrs or span.status.status_code is StatusCode.ERROR
        if operation in semconv.INFERENCE_OPERATIONS and not failed:
            assert semconv.INPUT_MESSAGES in attrs, span.name
            assert semconv.OUTPUT_MESSAGES in attrs, span.name
        if operation == semconv.OP_RETRIEVAL and not failed:
            assert semconv.RETRIEVAL_DOCUMENTS in attrs, span.name
    problems = _span_problems(spans)
    problems += [  # error.type is required when the operation ended in an error
        f"span {span.name!r}: status ERROR without error.type"
        for span in spans
        if span.status.status_code is StatusCode.ERROR and semconv.ERROR_TYPE not in span.attributes
    ]
    problems += [
        f"span {span.name!r}: {key}: not a semconv attribute llmtap checks"
        for span in spans
        for key in span.attributes
        if not key.startswith((*CHECKED_PREFIXES, "llmtap.")) and key not in GENERAL_ATTRIBUTES
    ]
    found, seen = metric_problems(metric_reader, scenario.scopes)
    problems += found
    # the problems a scenario found that are known (each named in the report): each must still
    # be found, so the entry goes when the problem is fixed; any other problem fails
    unknown = [p for p in problems if not any(re.search(k, p) for k in scenario.known)]
    assert not unknown, "\n".join(unknown)
    gone = [k for k in scenario.known if not any(re.search(k, p) for p in problems)]
    assert not gone, f"known problems no longer found (remove them from the scenario): {gone}"
    if scenario.framework:
        assert seen == scenario.metrics
    elif scenario.provider is not None:
        assert {semconv.METRIC_OPERATION_DURATION} <= seen
    else:  # the GenAI metrics require gen_ai.provider.name: none for a vector store's query
        assert seen == set()


def test_content_event_attributes_follow_the_registry(
    clients: Clients,
    instrument_openai: Any,
    instrument_anthropic: Any,
    span_exporter: Any,
    log_exporter: Any,
) -> None:
    """With SPAN_AND_EVENT capture the inference-details event is registered and typed too."""
    instrument_openai(capture="span_and_event")
    chat_tools(clients)
    responses_basic(clients)
    embeddings_basic(clients)  # embeddings are not inference: no event

    logs = [r.log_record for r in log_exporter.get_finished_logs()]
    assert [r.event_name for r in logs] == [semconv.EVENT_INFERENCE_DETAILS] * 3
    assert semconv.EVENT_INFERENCE_DETAILS in event_names()
    problems = []
    for record in logs:
        attrs = dict(record.attributes or {})
        assert semconv.INPUT_MESSAGES in attrs and semconv.OUTPUT_MESSAGES in attrs
        problems += attribute_problems(attrs, f"event {record.event_name}")
    assert problems == []
    assert _span_problems(span_exporter.get_finished_spans()) == []


EVENT_SCENARIOS = [
    s
    for s in SCENARIOS
    if s.id
    in {
        "anthropic-tools",
        "google-genai-tools",
        "bedrock-tools",
        "mistralai-tools",
        "cohere-tools",
        "ollama-tools",
        "groq-tools",
        "together-chat",
        "litellm-tools",
        # the agent frameworks' own inference spans (no provider instrumentation underneath)
        "openai-agents-handoff-guardrail",
        "langchain-agent",
        "langchain-rag",
        "mcp-tools",
    }
]


@pytest.mark.parametrize("scenario", EVENT_SCENARIOS, ids=str)
def test_other_sdks_content_events_follow_the_registry(
    scenario: Scenario, clients: Clients, instrument: Any, span_exporter: Any, log_exporter: Any
) -> None:
    """The inference-details event of every other SDK, as for OpenAI above."""
    instrument(_target(scenario), capture="span_and_event")
    scenario.run(clients)
    tokens.flush()
    spans = [
        s for s in span_exporter.get_finished_spans() if s.instrumentation_scope.name == "llmtap"
    ]
    inference = [
        s for s in spans if s.attributes.get(semconv.OPERATION) in semconv.INFERENCE_OPERATIONS
    ]
    logs = [r.log_record for r in log_exporter.get_finished_logs()]
    assert [r.event_name for r in logs] == [semconv.EVENT_INFERENCE_DETAILS] * len(inference)
    problems = []
    for record in logs:
        attrs = dict(record.attributes or {})
        assert semconv.INPUT_MESSAGES in attrs and semconv.OUTPUT_MESSAGES in attrs
        problems += attribute_problems(attrs, f"event {record.event_name}")
    assert problems == []


def test_scenarios_cover_every_instrumented_api() -> None:
    """Keeps the scenario list honest as adapters are added."""
    from llmtap.instrumentation.registry import INSTRUMENTATIONS

    ids = {s.id for s in SCENARIOS}
    for prefix in ("openai-chat", "openai-responses", "openai-embeddings", "anthropic"):
        assert any(i.startswith(prefix) for i in ids), prefix
    covered = {s.instrumentation for s in SCENARIOS}
    assert [i.name for i in INSTRUMENTATIONS if i.name not in covered] == []
    for scenario in SCENARIOS:
        _target(scenario)  # names a registered instrumentation
