"""Start-up: llmtap never imports an SDK the application does not use.

Each SDK is instrumented when the application imports it (post-import hooks), both through
``llmtap.configure()`` and under the real ``opentelemetry-instrument`` launcher (the
``llmtap_openai`` / ``llmtap_anthropic`` entry points). Every case runs in a fresh
interpreter: ``sys.modules`` of the test process already holds both SDKs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from support.otlp_receiver import OtlpReceiver

LAUNCHER = Path(sys.executable).parent / "opentelemetry-instrument"

HELPERS = """
import json, sys


def loaded():
    return sorted(m for m in ("openai", "anthropic") if m in sys.modules)


def say(kind, **fields):
    print(json.dumps({"kind": kind, **fields}), flush=True)


def chat():
    import openai

    client = openai.OpenAI(max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}]
    )
    client.close()
    return reply.id


def message():
    import anthropic

    client = anthropic.Anthropic(max_retries=0)
    reply = client.messages.create(
        model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
    )
    client.close()
    return reply.id
"""


def _env(devserver: Any, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "OPENAI_", "ANTHROPIC_", "LLMTAP_"))
    }
    env.update(
        OPENAI_BASE_URL=devserver.openai_base_url,
        OPENAI_API_KEY="test-key",
        ANTHROPIC_BASE_URL=devserver.anthropic_base_url,
        ANTHROPIC_API_KEY="test-key",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def _run(
    tmp_path: Path, devserver: Any, body: str, *, launcher: bool = False, **env: str
) -> dict[str, dict[str, Any]]:
    app = tmp_path / "app.py"
    app.write_text(HELPERS + textwrap.dedent(body) + '\nsay("done")\n')
    command = [sys.executable, str(app)]
    if launcher:
        if not LAUNCHER.exists():
            pytest.skip(f"{LAUNCHER} is missing (opentelemetry-instrumentation not installed)")
        command.insert(0, str(LAUNCHER))
    proc = subprocess.run(
        command,
        env=_env(devserver, **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"app failed:\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    said = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            said[record.pop("kind")] = record
    assert "done" in said, proc.stdout
    return said


CONFIGURE = """
import llmtap
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
done = llmtap.configure(span_exporters=[exporter])


def spans():
    done.force_flush()
    names = [s.name for s in exporter.get_finished_spans()
             if s.instrumentation_scope.name == "llmtap"]
    exporter.clear()
    return names
"""


def test_configure_imports_no_sdk_and_instruments_each_when_the_app_imports_it(
    tmp_path, devserver
) -> None:
    said = _run(
        tmp_path,
        devserver,
        CONFIGURE
        + """
say("configured", loaded=loaded())
chat()
say("openai", loaded=loaded(), spans=spans())
message()
say("anthropic", loaded=loaded(), spans=spans())
""",
    )
    assert said["configured"]["loaded"] == []
    assert said["openai"] == {"loaded": ["openai"], "spans": ["chat gpt-4o-mini"]}
    assert said["anthropic"] == {
        "loaded": ["anthropic", "openai"],
        "spans": ["chat claude-haiku-4-5"],
    }


def test_shutdown_before_the_import_disarms_the_hooks(tmp_path, devserver) -> None:
    said = _run(
        tmp_path,
        devserver,
        CONFIGURE
        + """
import wrapt

done.shutdown()
chat()
from openai.resources.chat.completions.completions import Completions
say("after", loaded=loaded(), spans=spans(),
    patched=isinstance(Completions.__dict__["create"], wrapt.FunctionWrapper))
""",
    )
    assert said["after"] == {"loaded": ["openai"], "spans": [], "patched": False}


def test_instrument_cycles_do_not_pile_up_hooks_and_the_last_one_wins(tmp_path, devserver) -> None:
    said = _run(
        tmp_path,
        devserver,
        """
import wrapt
import wrapt.importer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llmtap.instrumentation.openai import OpenAIInstrumentor

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
instrumentor = OpenAIInstrumentor()
for _ in range(5):
    instrumentor.instrument(tracer_provider=provider)
    instrumentor.uninstrument()
chat_module = "openai.resources.chat.completions.completions"
hooks = len(wrapt.importer._post_import_hooks.get(chat_module, ()))
say("cycled", loaded=loaded(), hooks=hooks)

chat()  # imported while uninstrumented: nothing patched, nothing traced
from openai.resources.chat.completions.completions import Completions
say("uninstrumented", spans=len(exporter.get_finished_spans()),
    patched=isinstance(Completions.__dict__["create"], wrapt.FunctionWrapper))

instrumentor.instrument(tracer_provider=provider)  # the module is loaded now: patched at once
chat()
say("instrumented", spans=[s.name for s in exporter.get_finished_spans()],
    patched=isinstance(Completions.__dict__["create"], wrapt.FunctionWrapper))
instrumentor.uninstrument()
say("restored", patched=isinstance(Completions.__dict__["create"], wrapt.FunctionWrapper))
""",
    )
    assert said["cycled"] == {"loaded": [], "hooks": 1}
    assert said["uninstrumented"] == {"spans": 0, "patched": False}
    assert said["instrumented"] == {"spans": ["chat gpt-4o-mini"], "patched": True}
    assert said["restored"] == {"patched": False}


def test_zero_code_launcher_imports_no_sdk_and_traces_the_one_the_app_uses(
    tmp_path, devserver
) -> None:
    with OtlpReceiver() as receiver:
        said = _run(
            tmp_path,
            devserver,
            """
say("started", loaded=loaded())
chat()
say("openai", loaded=loaded())
""",
            launcher=True,
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint,
            OTEL_EXPORTER_OTLP_INSECURE="true",
            OTEL_BSP_SCHEDULE_DELAY="100",
        )
        # the launcher's providers flush on exit: the span is in once the process is gone
        spans = [s for s in receiver.spans() if s.scope_name == "llmtap"]
    assert said["started"]["loaded"] == []
    assert said["openai"]["loaded"] == ["openai"]
    assert [s.name for s in spans] == ["chat gpt-4o-mini"]


def test_the_sdk_version_is_checked_when_it_is_patched(caplog, tracer_provider) -> None:
    import wrapt
    from openai.resources.chat.completions.completions import Completions

    from llmtap.instrumentation.openai import OpenAIInstrumentor

    class FutureOnly(OpenAIInstrumentor):
        _instance = None  # BaseInstrumentor keeps one instance per class
        dependencies = ("openai >= 99",)

    instrumentor = FutureOnly()
    instrumentor.instrument(tracer_provider=tracer_provider)  # no distribution scan here
    try:
        assert instrumentor.is_instrumented_by_opentelemetry
        assert not isinstance(Completions.__dict__["create"], wrapt.FunctionWrapper)
        assert any(
            "is not supported (openai >= 99): not instrumented" in r.getMessage()
            for r in caplog.records
        )
    finally:
        instrumentor.uninstrument()
    assert OpenAIInstrumentor().sdk_supported()  # the installed SDK is in range
