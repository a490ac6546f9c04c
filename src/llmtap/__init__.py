"""llmtap: OpenTelemetry-native LLM observability.

- ``llmtap.configure()`` traces every OpenAI and Anthropic call of the process
  (or run the app under ``opentelemetry-instrument`` with no code at all);
- ``llmtap.workflow`` / ``agent`` / ``tool`` / ``retrieval`` / ``rerank`` / ``step`` trace
  the steps of a pipeline;
- ``llmtap.context(...)`` stamps user, session, feature and metadata on every GenAI span;
- ``llmtap.record_feedback(...)`` puts an end user's thumbs or stars into the answer's trace.
"""

from llmtap.config import CaptureMode, ContentLimits, Settings
from llmtap.context import context
from llmtap.feedback import FeedbackError, FeedbackRecord, record_feedback
from llmtap.sdk.setup import Configured, configure
from llmtap.steps import Step, agent, rerank, retrieval, step, tool, workflow
from llmtap.version import __version__

__all__ = [
    "CaptureMode",
    "Configured",
    "ContentLimits",
    "FeedbackError",
    "FeedbackRecord",
    "Settings",
    "Step",
    "__version__",
    "agent",
    "configure",
    "context",
    "record_feedback",
    "rerank",
    "retrieval",
    "step",
    "tool",
    "workflow",
]
