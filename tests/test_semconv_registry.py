"""Every attribute llmtap emits is a registered, non-deprecated GenAI semconv v1.41 attribute of
the registered type; content JSON validates against the semconv JSON schemas; metrics match
``model/metrics.yaml``.

Real SDK calls (OpenAI; Anthropic once its instrumentor exists) go through the instrumentation
to the loopback dev server; nothing of llmtap is mocked. Add a scenario to ``SCENARIOS`` to
cover a new adapter or code path.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from opentelemetry.sdk.metrics.export import Histogram, InMemoryMetricReader

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

# General (non-GenAI) semconv attributes llmtap puts on GenAI spans and metrics.
GENERAL_ATTRIBUTES = {
    semconv.SERVER_ADDRESS: "string",
    semconv.SERVER_PORT: "int",
    semconv.ERROR_TYPE: "string",
    semconv.USER_ID: "string",
    semconv.SESSION_ID: "string",
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
            elif key in CLOSED_ENUMS and value not in spec.members:
                bad(f"not a member of {sorted(spec.members)}")
        if key in CONTENT_SCHEMAS:
            errors = sorted(
                content_validator(key).iter_errors(json.loads(value)), key=lambda e: list(e.path)
            )
            for error in errors[:3]:
                bad(f"schema {CONTENT_SCHEMAS[key]}: {list(error.path)}: {error.message}")
    return problems


def metric_problems(reader: InMemoryMetricReader) -> tuple[list[str], set[str]]:
    specs = metric_specs()
    problems: list[str] = []
    seen: set[str] = set()
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            if sm.scope.name != "llmtap":
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
        self.openai = openai.OpenAI(base_url=devserver.openai_base_url, api_key="k", max_retries=0)
        self.anthropic = anthropic.Anthropic(
            base_url=devserver.anthropic_base_url, api_key="k", max_retries=0
        )

    def async_openai(self) -> Any:
        import openai

        return openai.AsyncOpenAI(
            base_url=self.devserver.openai_base_url, api_key="k", max_retries=0
        )

    def close(self) -> None:
        self.openai.close()
        self.anthropic.close()


@dataclass(frozen=True)
class Scenario:
    id: str
    provider: str
    run: Callable[[Clients], None]
    spans: int = 1
    settings: dict[str, Any] = field(default_factory=dict)
    errors: int = 0  # spans expected to carry error.type

    def __str__(self) -> str:
        return self.id


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
]


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


def _instrumentor(scenario: Scenario, instrument_openai: Any, instrument_anthropic: Any, **kw: Any):
    fields = _settings_fields(scenario.settings)
    if scenario.provider == OPENAI:
        return instrument_openai(**kw, **fields)
    return instrument_anthropic(**kw, **fields)


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
    instrument_openai: Any,
    instrument_anthropic: Any,
    span_exporter: Any,
    metric_reader: InMemoryMetricReader,
) -> None:
    _instrumentor(scenario, instrument_openai, instrument_anthropic, capture="span_only")
    scenario.run(clients)
    tokens.flush()  # streams without usage end their span once the token estimate is in

    spans = [
        s for s in span_exporter.get_finished_spans() if s.instrumentation_scope.name == "llmtap"
    ]
    assert len(spans) == scenario.spans, [s.name for s in spans]
    assert sum(semconv.ERROR_TYPE in s.attributes for s in spans) == scenario.errors
    for span in spans:
        attrs = span.attributes
        assert attrs[semconv.PROVIDER] == scenario.provider
        assert attrs[semconv.OPERATION] in ("chat", "embeddings")
        # content capture is on: successful inference spans carry their messages
        if attrs[semconv.OPERATION] == "chat" and semconv.ERROR_TYPE not in attrs:
            assert semconv.INPUT_MESSAGES in attrs, span.name
            assert semconv.OUTPUT_MESSAGES in attrs, span.name
    problems = _span_problems(spans)
    assert not problems, "\n".join(problems)

    problems, seen = metric_problems(metric_reader)
    assert not problems, "\n".join(problems)
    assert {semconv.METRIC_OPERATION_DURATION} <= seen


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


def test_scenarios_cover_every_instrumented_api() -> None:
    """Keeps the scenario list honest as adapters are added."""
    ids = {s.id for s in SCENARIOS}
    for prefix in ("openai-chat", "openai-responses", "openai-embeddings", "anthropic"):
        assert any(i.startswith(prefix) for i in ids), prefix
