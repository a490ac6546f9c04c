"""What differs between the SDK releases llmtap supports (pyproject.toml ranges), for tests
that hold across the whole range: each entry says which release changed what."""

from __future__ import annotations

import anthropic
import httpx2
import openai
from packaging.version import Version

# A transport error in the middle of a stream: wrapped in the SDK's APIConnectionError by
# openai >= 3.14 and anthropic >= 2.17; httpx2's own error got through before.
OPENAI_MID_STREAM_ERROR: type[BaseException] = (
    openai.APIConnectionError
    if Version(openai.__version__) >= Version("3.14")
    else httpx2.TransportError
)
ANTHROPIC_MID_STREAM_ERROR: type[BaseException] = (
    anthropic.APIConnectionError
    if Version(anthropic.__version__) >= Version("2.17")
    else httpx2.TransportError
)
# A read timeout in the middle of a stream, likewise.
OPENAI_MID_STREAM_TIMEOUT: type[BaseException] = (
    openai.APITimeoutError
    if Version(openai.__version__) >= Version("3.14")
    else httpx2.TimeoutException
)
