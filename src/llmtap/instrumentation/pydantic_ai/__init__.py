"""PydanticAI instrumentation: PydanticAI's own OpenTelemetry spans, switched on for the app.

PydanticAI instruments itself (``Agent.instrument_all`` / ``agent.instrument`` / the
``Instrumentation`` capability) with GenAI semantic-convention spans: ``invoke_agent {agent}``
for a run, ``chat {model}`` (CLIENT) for each model request, ``execute_tool {tool}`` for each
tool call. llmtap does not make spans of its own for PydanticAI: when the app has made no
choice, it turns PydanticAI's instrumentation on for every agent (``Agent.instrument_all``)
with llmtap's tracer and meter providers, so those spans run through llmtap's pipeline (cost,
redaction, head sampling) and reach the judge like any other.

- Exactly one inference span per model call: PydanticAI's ``chat`` span is current while the
  ``openai``/``anthropic`` SDK call runs, and llmtap's provider instrumentation merges into a
  current GenAI inference span made by another layer (``_invocation``'s foreign-span rule)
  instead of opening a second one; the provider's request and response details land on it.
- The app's own choice is left alone: an ``Agent.instrument_all(...)`` made before llmtap
  (``Agent``'s class-wide default is then no longer ``False``, its initial value) is kept, and
  one made after replaces llmtap's. A per-agent choice (``agent.instrument = ...``, an
  ``Instrumentation`` capability, an ``InstrumentedModel``) wins over the class-wide default
  in PydanticAI itself. ``uninstrument()`` restores the default only while it is still llmtap's.
- Format: the newest instrumentation version PydanticAI offers (6, else 5): version 6 puts
  tool results in a ``tool`` message, as GenAI v1.41 pairs ``tool_call_response`` parts.
- Content (messages, instructions, tool arguments and results) only when llmtap's capture
  setting puts content on spans (PydanticAI writes it to span attributes only); binary data
  only with ``capture_blobs``. PydanticAI's ``model_request_parameters`` attribute (not a
  semconv one; the tool definitions are in ``gen_ai.tool.definitions``) is left out where the
  release lets it be. Run spans carry their usage as ``gen_ai.aggregated_usage.*``, so a run is
  not costed again on top of its model requests: llmtap renames it ``gen_ai.usage.*`` (no model
  on the run span, so the cost stage still leaves it alone).
- PydanticAI's spans in registered names (``_spans``): PydanticAI gets llmtap's tracer provider
  wrapped, so its deprecated and Logfire-only attributes are renamed or dropped as it sets them,
  an agent run's history becomes its ``gen_ai.input/output.messages``, a failed span gets
  ``error.type`` and each model call records ``gen_ai.client.operation.duration``.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import wrapt
from opentelemetry import trace
from opentelemetry.metrics import get_meter

from llmtap import semconv
from llmtap.config import Settings
from llmtap.instrumentation._instrumentor import SdkInstrumentor
from llmtap.instrumentation._invocation import Telemetry, log_once
from llmtap.instrumentation.pydantic_ai._spans import TidyTracerProvider
from llmtap.runtime import SCOPE
from llmtap.version import __version__

_log = logging.getLogger("llmtap")

# the package, not ``pydantic_ai.agent``: its hook would run while the package is still
# initializing, before PydanticAI can build its settings (they import its __version__)
_MODULE = "pydantic_ai"
_VERSIONS = (6, 5)  # newest first: the first one the installed release accepts is used

# module name -> the callback armed for it now (wrapt cannot unregister a post-import hook:
# one hook per module, dispatching to whatever is armed when the module is imported)
_armed: dict[str, Callable[[ModuleType], None]] = {}
_hooked: set[str] = set()


def _imported(module: ModuleType) -> None:
    callback = _armed.pop(getattr(module, "__name__", ""), None)
    if callback is not None:
        callback(module)


def _on_import(module: str, callback: Callable[[ModuleType], None]) -> None:
    """Run ``callback(module)`` when the app imports ``module`` (at once if it is loaded)."""
    _armed[module] = callback
    if module not in _hooked:
        _hooked.add(module)
        wrapt.register_post_import_hook(_imported, module)  # fires now if already imported
    else:
        loaded = sys.modules.get(module)
        if loaded is not None:
            _imported(loaded)


class PydanticAIInstrumentor(SdkInstrumentor):
    """Turns PydanticAI's own GenAI spans on for every agent, through llmtap's providers."""

    # 2.32: the first release on httpx2, as openai 3 is (its openai extra: openai >= 3.0), and
    # the first with format 6; 3.0 is to change the formats (PydanticAI's TODOs: drop 2-4,
    # default to 6). Its AnthropicModel works with anthropic 2.x from 2.60 on.
    dependencies = ("pydantic-ai-slim >= 2.32, < 3",)

    def _instrument(self, **kwargs: Any) -> None:
        self._providers = {
            "tracer_provider": kwargs.get("tracer_provider"),
            "meter_provider": kwargs.get("meter_provider"),
        }
        super()._instrument(**kwargs)

    def patch(self, settings: Settings, telemetry: Telemetry) -> None:
        self.installed: Any = None  # the InstrumentationSettings llmtap made the default

        def turn_on(module: ModuleType) -> None:
            try:
                if self.sdk_supported():
                    self._turn_on(module.Agent, settings)
            except Exception as exc:
                log_once("turning PydanticAI's instrumentation on", exc)

        _on_import(_MODULE, turn_on)

    def _turn_on(self, agent_class: Any, settings: Settings) -> None:
        if getattr(agent_class, "_instrument_default", False) is not False:
            _log.debug("llmtap: PydanticAI is instrumented by the app already; left as it is")
            return
        instrumentation = instrumentation_settings(settings, **self._providers)
        agent_class.instrument_all(instrumentation)
        self.installed = instrumentation

    def _uninstrument(self, **kwargs: Any) -> None:
        _armed.pop(_MODULE, None)
        module = sys.modules.get(_MODULE)
        installed, self.installed = getattr(self, "installed", None), None
        agent_class = getattr(module, "Agent", None)
        # the app may have replaced llmtap's default since: its choice stays
        if installed is not None and getattr(agent_class, "_instrument_default", None) is installed:
            agent_class.instrument_all(False)
        super()._uninstrument(**kwargs)


def tidy_provider(tracer_provider: Any = None, meter_provider: Any = None) -> TidyTracerProvider:
    """The tracer provider PydanticAI gets: ``tracer_provider`` (else the global one) with its
    spans tidied (``_spans``) and its model calls' durations recorded on llmtap's meter."""
    duration = get_meter(SCOPE, __version__, meter_provider).create_histogram(
        semconv.METRIC_OPERATION_DURATION,
        unit="s",
        description="GenAI operation duration.",
        explicit_bucket_boundaries_advisory=semconv.DURATION_BUCKETS,
    )
    return TidyTracerProvider(tracer_provider or trace.get_tracer_provider(), duration)


def instrumentation_settings(
    settings: Settings, tracer_provider: Any = None, meter_provider: Any = None
) -> Any:
    """PydanticAI's ``InstrumentationSettings`` for llmtap's providers and capture settings."""
    from pydantic_ai.models.instrumented import InstrumentationSettings

    options: dict[str, Any] = {
        "tracer_provider": tidy_provider(tracer_provider, meter_provider),
        "meter_provider": meter_provider,
        "include_content": settings.capture.on_span,
        "include_binary_content": settings.capture.on_span and settings.limits.capture_blobs,
        "use_aggregated_usage_attribute_names": True,
    }
    accepted = inspect.signature(InstrumentationSettings.__init__).parameters
    if "include_model_request_parameters" in accepted:
        options["include_model_request_parameters"] = False
    for version in _VERSIONS:
        try:
            return InstrumentationSettings(**options, version=version)
        except ValueError:
            continue
    return InstrumentationSettings(**options)
