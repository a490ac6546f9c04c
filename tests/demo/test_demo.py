"""The README's demo: runs offline and prints readable trace trees."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_prints_trace_trees_offline(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "span_only"
    out = subprocess.run(
        [sys.executable, "-m", "llmtap", "demo", "--keep", str(tmp_path)],
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
    # the loop: judged by the in-process service, feedback in the trace, failures queued
    assert "judging with 6 rules" in out
    # verdicts: linked from an evaluation trace of their own, drawn under the judged span
    assert "│  ├─ ⇢ evaluate no_pii_in_answer" in out
    assert "⇢ a verdict in an evaluation trace of its own" in out
    assert "├─ evaluate user_feedback" in out and "feedback=negative" in out
    assert "evaluate gives_a_time_frame" in out and "verdict=no_match" in out
    assert "review queue: 2 entries" in out
    forwarded = (tmp_path / "traces.jsonl").read_text()
    for planted in ("jane.doe@example.com", "7946 0958", "4111 1111 1111 1111"):
        assert planted not in forwarded
    assert "<EMAIL>" in forwarded and "<PHONE>" in forwarded
