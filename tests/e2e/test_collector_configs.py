"""The files of collector-config/: every Collector config passes ``otelcol-llmtap validate``
with the distribution built from builder-config.yaml, which holds exactly the components
those configs use; llmtap-service.yaml loads as the service's config with its judge."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.binaries import CONFIG_DIR, Processes, free_port, require_binary, start_collector

pytestmark = pytest.mark.e2e

KINDS = ("receivers", "processors", "exporters", "extensions", "connectors")


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _is_collector_config(path: Path) -> bool:
    data = _load(path)
    return (
        isinstance(data, dict)
        and isinstance(data.get("service"), dict)
        and ("pipelines" in data["service"])
    )


COLLECTOR_CONFIGS = sorted(p for p in CONFIG_DIR.glob("*.yaml") if _is_collector_config(p))


def _validate(config: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    binary = require_binary("otelcol-llmtap")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("COLLECTOR_", "SAMPLER_"))}
    return subprocess.run(
        [str(binary), "validate", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=60,
    )


def test_the_folder_holds_the_documented_configs() -> None:
    names = {p.name for p in COLLECTOR_CONFIGS}
    assert names == {"single.yaml", "router.yaml", "router-dns.yaml", "router-k8s.yaml",
                     "sampler.yaml", "router-kafka.yaml", "sampler-kafka.yaml"}  # fmt: skip
    readme = (CONFIG_DIR / "README.md").read_text()
    for name in (*names, "llmtap-service.yaml", "builder-config.yaml"):
        assert name in readme, f"{name} is not described in collector-config/README.md"


@pytest.mark.parametrize("config", COLLECTOR_CONFIGS, ids=lambda p: p.name)
def test_config_validates_with_the_built_distribution(config: Path) -> None:
    done = _validate(config)
    assert done.returncode == 0, f"{config.name}:\n{done.stdout}\n{done.stderr}"


def test_validate_rejects_a_broken_config(tmp_path: Path) -> None:
    """The check above means something: a misspelt key fails it."""
    data = _load(CONFIG_DIR / "sampler.yaml")
    data["processors"]["tail_sampling"]["decision_wiat"] = "1s"
    broken = tmp_path / "sampler.yaml"
    broken.write_text(yaml.safe_dump(data))
    done = _validate(broken)
    assert done.returncode != 0
    assert "decision_wiat" in done.stdout + done.stderr


# `validate` does not build tail_sampling policies (type, OTTL) nor start resolvers: start
# each config for real. router-k8s.yaml is left out: its resolver needs a Kubernetes API.
STARTABLE = [p for p in COLLECTOR_CONFIGS if p.name != "router-k8s.yaml"]


@pytest.mark.parametrize("config", STARTABLE, ids=lambda p: p.name)
def test_config_starts_healthy_and_stops_cleanly(
    config: Path, procs: Processes, tmp_path: Path
) -> None:
    unused = free_port()
    collector = start_collector(
        procs,
        config,
        env={
            "COLLECTOR_QUEUE_DIR": str(tmp_path / "queue"),
            "KAFKA_BROKERS": f"[127.0.0.1:{unused}]",
            "LLMTAP_SERVICE_ENDPOINT": f"127.0.0.1:{unused}",
            "SAMPLER_ENDPOINTS": f"[127.0.0.1:{unused}]",
            "SAMPLER_DNS_NAME": "localhost",
            "SAMPLER_PORT": str(unused),
            "PROMETHEUS_OTLP_METRICS_URL": f"http://127.0.0.1:{unused}/v1/metrics",
        },
    )
    assert collector.stop() == 0, collector.log()
    assert "Everything is ready" in collector.log()


def test_router_takes_any_number_of_samplers_from_the_environment() -> None:
    env = {"SAMPLER_ENDPOINTS": "[10.0.0.1:4317, 10.0.0.2:4317, 10.0.0.3:4317]"}
    done = _validate(CONFIG_DIR / "router.yaml", env)
    assert done.returncode == 0, done.stderr


def _used_components() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for path in COLLECTOR_CONFIGS:
        data = _load(path)
        for kind in KINDS:
            for key in data.get(kind) or {}:
                used[kind].add(key.split("/", 1)[0])
    return used


def _built_components() -> dict[str, set[str]]:
    binary = require_binary("otelcol-llmtap")
    done = subprocess.run(
        [str(binary), "components"], capture_output=True, text=True, timeout=60, check=True
    )
    listing = yaml.safe_load(done.stdout)
    return {kind: {entry["name"] for entry in listing.get(kind) or []} for kind in KINDS}


def test_the_distribution_holds_exactly_the_components_the_configs_use() -> None:
    built = _built_components()
    used = _used_components()
    for kind in KINDS:
        assert built[kind] == used[kind], kind


def test_manifest_pins_one_release_for_every_component() -> None:
    manifest = _load(CONFIG_DIR / "builder-config.yaml")
    versions = {
        entry["gomod"].split()[1]
        for kind in ("receivers", "processors", "exporters", "extensions")
        for entry in manifest[kind]
    }
    assert len(versions) == 1, versions
    script = (CONFIG_DIR.parent / "tools" / "build-otel-binaries.sh").read_text()
    assert re.search(rf"^OCB_VERSION={re.escape(versions.pop())}$", script, re.M)


def test_service_config_loads_with_its_destinations_and_judge() -> None:
    from llmtap.config_file import load_config
    from llmtap.service import service_config_of
    from llmtap.service.judging import Judging

    env = {"DD_API_KEY": "dd-test-key", "LLMTAP_JUDGE_SAMPLE": "0.25"}
    cfg = load_config(CONFIG_DIR / "llmtap-service.yaml", env=env)
    assert [(d.name, d.preset) for d in cfg.export] == [
        ("jaeger", "jaeger"),
        ("tempo", "tempo"),
        ("datadog", "datadog_llmobs"),
    ]
    assert service_config_of(cfg).best_effort == ["datadog"]
    assert cfg.export[2].ml_app == "llmtap"
    judging = Judging.from_config(cfg, emit=lambda spans: None)
    assert judging is not None
    rules = {(rule.name, rule.sample) for rule in judging.rules}
    assert ("pii_in_output", 1.0) in rules and ("answer_relevance", 0.25) in rules


def _pipelines(data: dict[str, Any]) -> list[dict[str, Any]]:
    return list(data["service"]["pipelines"].values())


@pytest.mark.parametrize("config", COLLECTOR_CONFIGS, ids=lambda p: p.name)
def test_every_exporter_keeps_a_bounded_queue_on_disk(config: Path) -> None:
    """What a collector accepted waits on disk until delivered: every exporter queues in
    file_storage/queue (a directory from COLLECTOR_QUEUE_DIR), bounded in bytes, and
    retries without a time limit; load_balancing's per-sampler exporters have no queue or
    retry of their own (a failure goes back to the queue on disk)."""
    data = _load(config)
    storage = data["extensions"]["file_storage/queue"]
    assert storage["directory"].startswith("${env:COLLECTOR_QUEUE_DIR:-/")
    assert storage["create_directory"] is True
    assert "file_storage/queue" in data["service"]["extensions"]
    for name, exporter in data["exporters"].items():
        queue = exporter["sending_queue"]
        assert queue["storage"] == "file_storage/queue", name
        assert (queue["sizer"], queue["enabled"]) == ("bytes", True), name
        assert "COLLECTOR_QUEUE_MAX_BYTES" in str(queue["queue_size"]), name
        assert exporter["retry_on_failure"] == {"enabled": True, "max_elapsed_time": 0}, name
        if name == "load_balancing":
            otlp = exporter["protocol"]["otlp"]
            assert otlp["sending_queue"] == {"enabled": False}
            assert otlp["retry_on_failure"] == {"enabled": False}
    # a batch processor would acknowledge spans before they reach the queue on disk
    for pipeline in _pipelines(data):
        assert set(pipeline.get("processors", [])) <= {"memory_limiter", "tail_sampling"}


def test_kafka_sampler_samples_as_the_otlp_sampler_does() -> None:
    otlp, kafka = _load(CONFIG_DIR / "sampler.yaml"), _load(CONFIG_DIR / "sampler-kafka.yaml")
    assert kafka["processors"] == otlp["processors"]
    assert kafka["exporters"] == otlp["exporters"]
    assert kafka["extensions"] == otlp["extensions"]
    (pipeline,) = _pipelines(kafka)
    assert pipeline["receivers"] == ["kafka"]
    assert pipeline["processors"] == _pipelines(otlp)[0]["processors"]


def test_kafka_router_and_samplers_meet_on_one_topic_keyed_by_trace_id() -> None:
    router = _load(CONFIG_DIR / "router-kafka.yaml")["exporters"]["kafka"]
    sampler = _load(CONFIG_DIR / "sampler-kafka.yaml")["receivers"]["kafka"]
    assert router["partition_traces_by_id"] is True
    assert router["producer"]["required_acks"] == -1
    assert [router["traces"]["topic"]] == sampler["traces"]["topics"]
    assert router["traces"]["encoding"] == sampler["traces"]["encoding"] == "otlp_proto"
    assert router["brokers"] == sampler["brokers"]
    assert "KAFKA_GROUP_ID" in sampler["group_id"]
    # offsets are committed once the pipeline took the spans; errors are read again
    assert sampler["message_marking"] == {"after": True, "on_error": False}
    assert sampler["error_backoff"]["enabled"] is True
