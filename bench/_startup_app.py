"""The application measured by ``startup.py``: set up one tool, then make the first OpenAI call.

    python bench/_startup_app.py ROW        # (or under opentelemetry-instrument for zero-code rows)

Prints one JSON line: wall-clock timestamps (``time.time()``, comparable with the parent's
spawn time) at the first line of this script, after the set-up, and after the first call
returned; the process's CPU time (all threads, since the interpreter started, the
``opentelemetry-instrument`` launcher included: it execs into this process) at the first
line and after the call; which SDKs were loaded after the set-up and at the end; and how many spans the
call produced (checked after the timed part). Nothing here is imported before the first
timestamp but ``time`` (and, for every row alike, what Python's start-up imports).
"""

import time

T_MAIN = time.time()
CPU_MAIN = time.process_time()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

ROW = sys.argv[1]
MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Hello"}]


def loaded() -> list[str]:
    return sorted(m for m in ("openai", "anthropic") if m in sys.modules)


def otel_providers() -> tuple:
    """What every row that sets OpenTelemetry up by hand does: SDK tracer + meter providers,
    a batch span processor to an in-memory exporter, installed as the globals."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    meter_provider = MeterProvider()
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider, exporter


def setup() -> tuple:
    """Returns (flush, spans) callables for the check after the timed part."""
    if ROW == "sdk":
        return None, None
    if ROW == "llmtap":
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        import llmtap

        exporter = InMemorySpanExporter()
        done = llmtap.configure(span_exporters=[exporter])
        return done.force_flush, exporter.get_finished_spans
    if ROW.startswith("zero_code"):
        # the launcher set everything up before this script; a processor to count spans
        from opentelemetry import trace
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = trace.get_tracer_provider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider.force_flush, exporter.get_finished_spans
    if ROW == "openlit":
        import openlit

        # openlit.init() reuses SDK providers already installed as the globals; its defaults
        # otherwise (it instruments every library it supports that is installed), except
        # no content and a local (empty) price list: by default it downloads one
        tracer_provider, meter_provider, exporter = otel_providers()
        openlit.init(capture_message_content=False, pricing_json=os.environ["STARTUP_PRICES"])
        return tracer_provider.force_flush, exporter.get_finished_spans
    tracer_provider, meter_provider, exporter = otel_providers()
    providers = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}
    if ROW == "llmtap_instrumentor":
        from llmtap.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(**providers)
    elif ROW == "openllmetry":
        os.environ["TRACELOOP_TRACE_CONTENT"] = "false"
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(**providers)
    elif ROW == "openinference":
        from openinference.instrumentation import TraceConfig
        from openinference.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(
            **providers, config=TraceConfig(hide_inputs=True, hide_outputs=True)
        )
    elif ROW == "otel_v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(**providers)
    elif ROW == "otel_genai":
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(**providers)
    else:
        raise SystemExit(f"unknown row {ROW!r}")
    return tracer_provider.force_flush, exporter.get_finished_spans


flush, spans = setup()
T_SETUP = time.time()
LOADED_AFTER_SETUP = loaded()

import openai  # noqa: E402

client = openai.OpenAI(max_retries=0)  # OPENAI_BASE_URL / OPENAI_API_KEY from the environment
reply = client.chat.completions.create(model=MODEL, messages=MESSAGES)
T_DONE = time.time()
CPU_DONE = time.process_time()

assert reply.choices[0].message.content
span_count = None
if flush is not None:
    flush()
    span_count = len(spans())
print(
    json.dumps(
        {
            "row": ROW,
            "t_main": T_MAIN,
            "t_setup": T_SETUP,
            "t_done": T_DONE,
            "cpu_main": CPU_MAIN,
            "cpu_done": CPU_DONE,
            "loaded_after_setup": LOADED_AFTER_SETUP,
            "loaded_at_end": loaded(),
            "spans": span_count,
            "modules": len(sys.modules),
        }
    ),
    flush=True,
)
