"""The README's demo: runs offline and prints readable trace trees."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_prints_trace_trees_offline():
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "span_only"
    out = subprocess.run(
        [sys.executable, "-m", "llmtap", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    ).stdout
    assert "invoke_workflow support-answer" in out
    assert "├─ retrieval knowledge-base" in out
    assert "execute_tool get_order_status" in out
    assert "chat gpt-4o-mini" in out and "ttfc=" in out and "stream=completed" in out
    assert "embeddings text-embedding-3-small" in out
    assert "chat claude-sonnet-4-5" in out
    assert "anthropic.messages.create" not in out
    assert "user=user-7" in out and "feature=support" in out
    assert "redacted=3" in out  # email, phone and card in the support question
    assert "cost=$" in out
    assert out.count("trace ") >= 5
