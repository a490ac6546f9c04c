"""Settings from the environment: the capture variable and llmtap's own knobs."""

from __future__ import annotations

import logging

import pytest

from llmtap.config import CaptureMode, Settings


@pytest.mark.parametrize(
    ("raw", "mode"),
    [
        (None, CaptureMode.NO_CONTENT),
        ("NO_CONTENT", CaptureMode.NO_CONTENT),
        ("SPAN_ONLY", CaptureMode.SPAN_ONLY),
        ("event_only", CaptureMode.EVENT_ONLY),
        ("SPAN_AND_EVENT", CaptureMode.SPAN_AND_EVENT),
        ("true", CaptureMode.SPAN_ONLY),
        ("false", CaptureMode.NO_CONTENT),
    ],
)
def test_capture_variable(raw, mode):
    env = {} if raw is None else {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": raw}
    assert Settings.from_env(env).capture is mode


def test_bad_values_warn_and_fall_back(caplog):
    env = {
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "everything",
        "LLMTAP_CONTENT_MAX_PART_CHARS": "-5",
        "LLMTAP_INJECT_STREAM_USAGE": "maybe",
    }
    with caplog.at_level(logging.WARNING, logger="llmtap"):
        settings = Settings.from_env(env)
    assert settings.capture is CaptureMode.NO_CONTENT
    assert settings.limits.max_part_chars == 16_384
    assert settings.inject_stream_usage is False
    text = caplog.text
    assert "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT" in text
    assert "'everything' is not one of" in text
    assert "LLMTAP_CONTENT_MAX_PART_CHARS='-5'" in text
    assert "LLMTAP_INJECT_STREAM_USAGE='maybe'" in text


def test_limits_and_flags_from_env():
    settings = Settings.from_env(
        {
            "LLMTAP_CONTENT_MAX_PART_CHARS": "100",
            "LLMTAP_CONTENT_MAX_ATTRIBUTE_CHARS": "2000",
            "LLMTAP_CONTENT_CAPTURE_BLOBS": "yes",
            "LLMTAP_ESTIMATE_STREAM_USAGE": "off",
            "LLMTAP_INJECT_STREAM_USAGE": "1",
        }
    )
    assert settings.limits.max_part_chars == 100
    assert settings.limits.max_attribute_chars == 2000
    assert settings.limits.capture_blobs is True
    assert settings.estimate_stream_usage is False
    assert settings.inject_stream_usage is True
