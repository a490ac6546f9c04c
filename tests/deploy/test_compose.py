"""deploy/compose.yaml: valid against the Compose specification's JSON schema (from the Go
module github.com/compose-spec/compose-go/v2, fetched through the Go module proxy), every
file it mounts exists, and its ports, addresses and variables agree with the llmtap
service config, the collector config, Prometheus, Jaeger, Tempo and Grafana's datasources."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from llmtap.config_file import load_config
from llmtap.service import parse_address, service_config_of
from support.binaries import require_binary

from .conftest import DEPLOY, ROOT

COMPOSE_GO = "github.com/compose-spec/compose-go/v2@v2.16.2"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    if shutil.which("go") is None:
        pytest.skip("Go is not installed: the Compose schema comes from a Go module")
    result = subprocess.run(
        ["go", "mod", "download", "-json", COMPOSE_GO],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    schema = Path(json.loads(result.stdout)["Dir"]) / "schema" / "compose-spec.json"
    return json.loads(schema.read_text())


def _env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in (SERVICES[service].get("environment") or {}).items()}


def _default(value: str) -> str:
    """``${VAR:-default}`` as compose interpolates it with VAR unset."""
    return re.sub(r"\$\{[A-Za-z_]\w*:-([^}]*)\}", r"\1", value)


def _mounts() -> list[tuple[str, str, str]]:
    out = []
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                out.append((name, source, target))
    return out


def _mounted(service: str, target: str) -> Path:
    (source,) = [s for n, s, t in _mounts() if n == service and t == target]
    return DEPLOY / source


def _service_config(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in _env("llmtap").items():
        monkeypatch.setenv(name, _default(value))
    return service_config_of(load_config(str(_mounted("llmtap", "/etc/llmtap/llmtap.yaml"))))


def _port(address: str) -> int:
    return parse_address(address)[1]


def test_compose_file_matches_the_compose_schema(compose_schema: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(compose_schema)
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(COMPOSE)]
    assert errors == []


def test_the_schema_check_rejects_mistakes(compose_schema: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["llmtap"]["depends_on"]["jaeger"]["condition"] = "service_up"
    broken["services"]["grafana"]["port"] = ["3000:3000"]
    errors = list(jsonschema.Draft202012Validator(compose_schema).iter_errors(broken))
    paths = {e.json_path for e in errors}
    assert paths >= {"$.services.llmtap.depends_on", "$.services.grafana"}, paths
    assert any("'port' was unexpected" in e.message for e in errors)


def test_every_mounted_file_exists() -> None:
    mounts = _mounts()
    assert len(mounts) >= 8
    for service, source, _ in mounts:
        assert (DEPLOY / source).exists(), f"{service} mounts a missing {source}"
    assert (DEPLOY / SERVICES["llmtap"]["build"]["dockerfile"].removeprefix("deploy/")).is_file()
    assert (ROOT / SERVICES["collector"]["build"]["dockerfile"]).is_file()


def test_the_collector_reaches_the_service_and_prometheus(monkeypatch: pytest.MonkeyPatch) -> None:
    service = _service_config(monkeypatch)
    env = _env("collector")
    host, port = parse_address(env["LLMTAP_SERVICE_ENDPOINT"])
    assert (host, port) == ("llmtap", _port(service.grpc_address or ""))
    url = urllib.parse.urlsplit(env["PROMETHEUS_OTLP_METRICS_URL"])
    assert (url.hostname, url.port, url.path) == ("prometheus", 9090, "/api/v1/otlp/v1/metrics")
    assert "--web.enable-otlp-receiver" in SERVICES["prometheus"]["command"]
    config = _mounted("collector", "/etc/otelcol/config.yaml").read_text()
    refs = {m.group(1): bool(m.group(2)) for m in _ENV_REF.finditer(config)}
    assert set(env) <= set(refs), "variables the collector config does not read"
    assert {n for n, default in refs.items() if not default} <= set(env)


def test_service_addresses_match_the_ports_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    service = _service_config(monkeypatch)
    metrics = _port(service.metrics_address or "")
    assert parse_address(service.grpc_address or "")[0] == "0.0.0.0"
    assert f"{metrics}:{metrics}" in SERVICES["llmtap"]["ports"]
    prometheus = yaml.safe_load(
        _mounted("prometheus", "/etc/prometheus/prometheus.yml").read_text()
    )
    jobs = {j["job_name"]: j for j in prometheus["scrape_configs"]}
    assert jobs["llmtap-service"]["static_configs"][0]["targets"] == [f"llmtap:{metrics}"]
    for name in prometheus["rule_files"]:
        assert any(t == f"/etc/prometheus/{name}" for n, _, t in _mounts() if n == "prometheus")


def test_backends_listen_where_the_service_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_env = _env("llmtap")
    for name, value in cfg_env.items():
        monkeypatch.setenv(name, _default(value))
    cfg = load_config(str(_mounted("llmtap", "/etc/llmtap/llmtap.yaml")))
    endpoints = {e.name: urllib.parse.urlsplit(e.endpoint) for e in cfg.export}
    assert set(endpoints) == {"jaeger", "tempo"}
    jaeger = yaml.safe_load(_mounted("jaeger", "/etc/jaeger/config.yaml").read_text())
    tempo = yaml.safe_load(_mounted("tempo", "/etc/tempo/tempo.yaml").read_text())
    jaeger_grpc = jaeger["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    tempo_grpc = tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert (endpoints["jaeger"].hostname, endpoints["jaeger"].port) == (
        "jaeger",
        _port(jaeger_grpc),
    )
    assert (endpoints["tempo"].hostname, endpoints["tempo"].port) == ("tempo", _port(tempo_grpc))
    assert "--config" in SERVICES["jaeger"]["command"]
    assert SERVICES["tempo"]["command"] == ["-config.file=/etc/tempo/tempo.yaml"]
    judge = urllib.parse.urlsplit(_default(cfg_env["JUDGE_BASE_URL"]))
    assert (judge.hostname, judge.port) == ("devserver", 8000)
    assert SERVICES["devserver"]["command"][-3:-2] == ["8000"]


def test_grafana_datasources_point_at_the_compose_services() -> None:
    provisioning = _mounted("grafana", "/etc/grafana/provisioning")
    sources = yaml.safe_load((provisioning / "datasources" / "datasources.yaml").read_text())
    urls = {d["uid"]: urllib.parse.urlsplit(d["url"]) for d in sources["datasources"]}
    jaeger = yaml.safe_load(_mounted("jaeger", "/etc/jaeger/config.yaml").read_text())
    tempo = yaml.safe_load(_mounted("tempo", "/etc/tempo/tempo.yaml").read_text())
    query = jaeger["extensions"]["jaeger_query"]["http"]["endpoint"]
    assert (urls["prometheus"].hostname, urls["prometheus"].port) == ("prometheus", 9090)
    assert (urls["jaeger"].hostname, urls["jaeger"].port) == ("jaeger", _port(query))
    assert (urls["tempo"].hostname, urls["tempo"].port) == (
        "tempo",
        tempo["server"]["http_listen_port"],
    )
    dashboards = yaml.safe_load((provisioning / "dashboards" / "dashboards.yaml").read_text())
    (provider,) = dashboards["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert _mounted("grafana", "/var/lib/grafana/dashboards") == DEPLOY / "grafana/dashboards"
    home = _env("grafana")["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (DEPLOY / "grafana/dashboards" / Path(home).name).is_file()


def test_the_example_app_sends_to_the_collector() -> None:
    env = _env("app")
    assert urllib.parse.urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"]).netloc == "collector:4317"
    assert "4317:4317" in SERVICES["collector"]["ports"]
    assert env["OPENAI_BASE_URL"] == "http://devserver:8000/v1"
    assert _mounted("app", "/opt/traffic/traffic.py").is_file()
    assert SERVICES["app"]["entrypoint"] == ["python", "/opt/traffic/traffic.py"]


def test_jaeger_config_is_accepted_by_jaeger(tmp_path: Path) -> None:
    """``jaeger validate`` (Jaeger v2 is a Collector distribution) on deploy/jaeger/config.yaml;
    the binary comes from tools/build-otel-binaries.sh."""
    jaeger = require_binary("jaeger")
    config = _mounted("jaeger", "/etc/jaeger/config.yaml")
    result = subprocess.run(
        [str(jaeger), "validate", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_collector_keeps_its_queues_on_a_named_volume() -> None:
    env = _env("collector")
    queue_dir = env["COLLECTOR_QUEUE_DIR"]
    named = [v.split(":") for v in SERVICES["collector"]["volumes"] if not v.startswith(".")]
    assert [queue_dir] == [target for _, target, *_ in named]
    assert {source for source, *_ in named} <= set(COMPOSE["volumes"])


def _service_queue_dir() -> str:
    config = (DEPLOY / "llmtap.yaml").read_text()
    return re.search(r"queue_dir: \$\{env:LLMTAP_QUEUE_DIR:-([^}]+)\}", config).group(1)


def test_the_service_keeps_its_durable_queues_on_a_named_volume() -> None:
    named = [v.split(":") for v in SERVICES["llmtap"]["volumes"] if not v.startswith(".")]
    assert [_service_queue_dir()] == [target for _, target, *_ in named]
    assert {source for source, *_ in named} <= set(COMPOSE["volumes"])
