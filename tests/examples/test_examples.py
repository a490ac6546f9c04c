"""The runnable examples, run as a user runs them (``python examples/<name>/app.py``) with no
provider key: they must start the loopback model server, trace, and print their trees."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {
    "chat": ["chat gpt-4o-mini", "feature=chat", "in=", "out=", "cost=$"],
    "streaming": ["stream=completed", "stream=closed", "ttfc=", "(tokens estimated)"],
    "rag": [
        "invoke_workflow answer-question",
        "├─ retrieval knowledge-base",
        "├─ rerank overlap-reranker",
        "└─ chat gpt-4o-mini",
        "feature=support",
    ],
    "gemini": [
        "invoke_workflow order-question",
        "├─ execute_tool get_order_status",
        "generate_content gemini-2.5-flash",
        "finish=tool_call",
        "stream=completed",
        "ttfc=",
    ],
    "bedrock": [
        "chat us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "aws.bedrock",
        "stream=completed",
        "ttfc=",
        "cost=$",
    ],
    "langgraph_agent": [
        "invoke_agent order-agent",
        "├─ chat gpt-4o-mini",
        "finish=tool_calls",
        "├─ execute_tool get_order_status",
        "└─ chat gpt-4o-mini",
    ],
    "llamaindex_rag": [
        "invoke_workflow RetrieverQueryEngine",
        "├─ retrieval VectorIndexRetriever",
        "│  └─ embeddings nomic-embed-text",
        "├─ rerank SimilarityPostprocessor",
        "└─ chat claude-opus-4-7",
        "feature=support",
    ],
    "prompt_compare": [
        "llmtap compare by prompt.version (llmtap.prompt.version): baseline 1 (40 traces, 40 "
        "model calls) vs candidate 2 (40 traces, 40 model calls)",
        "(16/40)",  # v2's truncation verdicts that passed
        "-60.0pp [-73.7pp, -42.3pp]",
        "(27/40)",  # v2's negative feedback
        "+55.0pp [+34.4pp, +69.3pp]",
        "can't tell yet",
        "better",
    ],
    "agent": [
        "invoke_agent order-agent",
        "finish=tool_calls",
        "├─ execute_tool get_order_status",
        "└─ chat gpt-4o-mini",
    ],
}


def _offline_env() -> dict[str, str]:
    drop = ("OPENAI_", "ANTHROPIC_", "OTEL_", "LLMTAP_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "span_only"
    return env


# modules an example needs that the oldest supported releases cannot provide, and why
NEEDS = {
    "llamaindex_rag": (
        ("llama_index.llms.anthropic", "llama_index.embeddings.ollama"),
        "the LlamaIndex integrations pip resolves beside llama-index-core 0.12 (the oldest run) "
        "predate anthropic 2",
    ),
}


def _skip_unless_importable(name: str) -> None:
    modules, why = NEEDS.get(name, ((), ""))
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            pytest.skip(f"{name}: {module} does not import here ({exc}): {why}")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_offline_and_prints_its_trace(name: str) -> None:
    _skip_unless_importable(name)
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name / "app.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env=_offline_env(),
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    for expected in EXPECTED[name]:
        assert expected in done.stdout, f"{expected!r} not in:\n{done.stdout}"
    assert "Traceback" not in done.stderr


def test_every_example_folder_is_tested_and_listed_in_the_readme() -> None:
    readme = (ROOT / "examples" / "README.md").read_text()
    folders = {p.parent.name for p in (ROOT / "examples").glob("*/app.py")}
    assert set(EXPECTED) <= folders
    for folder in folders:
        assert f"examples/{folder}/" in readme, folder
