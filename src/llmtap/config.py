"""Settings shared by the in-process SDK side and the service, read from the environment."""

from __future__ import annotations

import enum
import logging
import os
from dataclasses import dataclass, field

_log = logging.getLogger("llmtap")


class CaptureMode(enum.Enum):
    NO_CONTENT = "no_content"
    SPAN_ONLY = "span_only"
    EVENT_ONLY = "event_only"
    SPAN_AND_EVENT = "span_and_event"

    @property
    def on_span(self) -> bool:
        return self in (CaptureMode.SPAN_ONLY, CaptureMode.SPAN_AND_EVENT)

    @property
    def on_event(self) -> bool:
        return self in (CaptureMode.EVENT_ONLY, CaptureMode.SPAN_AND_EVENT)

    @property
    def any(self) -> bool:
        return self is not CaptureMode.NO_CONTENT

    @classmethod
    def parse(cls, value: str | None, source: str = "value") -> CaptureMode:
        if value is None or not value.strip():
            return cls.NO_CONTENT
        text = value.strip().lower()
        if text in ("true", "1", "yes"):
            return cls.SPAN_ONLY
        if text in ("false", "0", "no"):
            return cls.NO_CONTENT
        try:
            return cls(text)
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            raise ValueError(f"{source}: {value!r} is not one of {allowed}") from None


CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


@dataclass
class ContentLimits:
    """Caps that keep spans small: one text part, one attribute (a whole message list)."""

    max_part_chars: int = 16_384
    max_attribute_chars: int = 65_536
    capture_blobs: bool = False


@dataclass
class Settings:
    capture: CaptureMode = CaptureMode.NO_CONTENT
    limits: ContentLimits = field(default_factory=ContentLimits)
    estimate_stream_usage: bool = True
    inject_stream_usage: bool = False
    # agent frameworks: also trace their internal runs (LangChain's prompt templates, output
    # parsers, routing lambdas, sequence plumbing), which otherwise make no span
    framework_internal_spans: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        try:
            capture = CaptureMode.parse(env.get(CAPTURE_ENV), CAPTURE_ENV)
        except ValueError as exc:
            _log.warning("%s; recording no content", exc)
            capture = CaptureMode.NO_CONTENT
        limits = ContentLimits(
            max_part_chars=_int(env, "LLMTAP_CONTENT_MAX_PART_CHARS", 16_384),
            max_attribute_chars=_int(env, "LLMTAP_CONTENT_MAX_ATTRIBUTE_CHARS", 65_536),
            capture_blobs=_bool(env, "LLMTAP_CONTENT_CAPTURE_BLOBS", False),
        )
        return cls(
            capture=capture,
            limits=limits,
            estimate_stream_usage=_bool(env, "LLMTAP_ESTIMATE_STREAM_USAGE", True),
            inject_stream_usage=_bool(env, "LLMTAP_INJECT_STREAM_USAGE", False),
            framework_internal_spans=_bool(env, "LLMTAP_FRAMEWORK_INTERNAL_SPANS", False),
        )


def _int(env: dict[str, str] | os._Environ, name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value <= 0:
        _log.warning("%s=%r is not a positive integer; using %d", name, raw, default)
        return default
    return value


def _bool(env: dict[str, str] | os._Environ, name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    text = raw.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    _log.warning("%s=%r is not a boolean; using %s", name, raw, default)
    return default


_active: Settings | None = None


def use_settings(settings: Settings | None) -> None:
    """Make ``settings`` what instrumentors use when they are given none (set by configure)."""
    global _active
    _active = settings


def current_settings() -> Settings:
    return _active if _active is not None else Settings.from_env()
