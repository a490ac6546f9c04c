"""The demo's service configuration (``llmtap.demo.loop.demo_config``)."""

from __future__ import annotations

import yaml

from llmtap.config_file import load_config
from llmtap.demo.loop import demo_config


def test_phoenix_is_one_more_destination_with_the_phoenix_preset(tmp_path):
    url = "http://127.0.0.1:6006/v1/traces"
    path = demo_config(tmp_path, jaeger="http://127.0.0.1:4317", phoenix=url)
    export = yaml.safe_load(path.read_text())["export"]
    assert export == [
        {"preset": "file", "path": str(tmp_path / "traces.jsonl")},
        {"preset": "jaeger", "endpoint": "http://127.0.0.1:4317"},
        {"preset": "phoenix", "endpoint": url},
    ]
    config = load_config(str(path))  # a configuration llmtap takes as it is
    # the verdicts and the feedback go to the same Phoenix, as span annotations
    sinks = [{"sink": "phoenix", "endpoint": "http://127.0.0.1:6006"}]
    assert config.service.evaluation_sinks == sinks
    from llmtap.service.sinks.config import build_sinks

    ((options, sink),) = build_sinks(config.service.evaluation_sinks)
    assert sink.target == "http://127.0.0.1:6006/v1/span_annotations"
    assert set(options.sources) == {"judge", "rule", "user"}
    sink.close()


def test_without_phoenix_nothing_goes_there(tmp_path):
    config = yaml.safe_load(demo_config(tmp_path).read_text())
    assert [e["preset"] for e in config["export"]] == ["file"]
    assert "evaluation_sinks" not in config["service"]
