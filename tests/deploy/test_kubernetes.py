"""deploy/kubernetes: every manifest validates against the Kubernetes API schemas bundled
with the ``kubernetes-validate`` package (strict: unknown fields fail), the kustomization
references files that exist, and the pieces agree with each other (selectors, ConfigMaps,
ports, the resolver's RBAC, the llmtap.yaml the pods load)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from llmtap.config_file import load_config
from llmtap.service import parse_address, service_config_of

from .conftest import DEPLOY, ROOT

K8S = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.34"
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())
_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


def _documents() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name in KUSTOMIZATION["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc:
                out.append((name, doc))
    return out


def _one(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for _, d in _documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def _container(deployment: str, name: str) -> dict[str, Any]:
    spec = _one("Deployment", deployment)["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == name]
    return container


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _generated(name: str) -> dict[str, str]:
    """key -> file of a configMapGenerator entry (``key=path``)."""
    (entry,) = [g for g in KUSTOMIZATION["configMapGenerator"] if g["name"] == name]
    return dict(f.split("=", 1) for f in entry.get("files", []))


@pytest.mark.parametrize(
    ("source", "doc"), _documents(), ids=lambda v: v["kind"] if isinstance(v, dict) else v
)
def test_manifest_matches_the_kubernetes_schema(source: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_rejects_mistakes() -> None:
    hpa = _one("HorizontalPodAutoscaler", "llmtap")
    broken = yaml.safe_load(yaml.safe_dump(hpa))
    broken["spec"]["minReplica"] = broken["spec"].pop("minReplicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_all_kinds_are_there() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for _, d in _documents()}
    assert kinds >= {
        ("Namespace", "llmtap"),
        ("Deployment", "llmtap"),
        ("Deployment", "otel-router"),
        ("Service", "llmtap-headless"),
        ("Service", "llmtap-metrics"),
        ("Service", "otel-router"),
        ("HorizontalPodAutoscaler", "llmtap"),
        ("PodDisruptionBudget", "llmtap"),
        ("ServiceAccount", "otel-router"),
        ("Role", "otel-router-resolver"),
        ("RoleBinding", "otel-router-resolver"),
    }


def test_kustomization_references_exist() -> None:
    for name in KUSTOMIZATION["resources"]:
        assert (K8S / name).is_file(), name
    for generator in KUSTOMIZATION["configMapGenerator"]:
        for entry in generator.get("files", []):
            path = K8S / entry.split("=", 1)[-1]
            assert path.resolve().is_file(), f"{generator['name']}: {path}"
    listed = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == set(KUSTOMIZATION["resources"]), "manifests left out of the kustomization"


def test_selectors_match_the_pods() -> None:
    for deployment in ("llmtap", "otel-router"):
        spec = _one("Deployment", deployment)["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
    pods = _one("Deployment", "llmtap")["spec"]["template"]["metadata"]["labels"]
    for kind, name in (
        ("Service", "llmtap-headless"),
        ("Service", "llmtap-metrics"),
        ("PodDisruptionBudget", "llmtap"),
    ):
        spec = _one(kind, name)["spec"]
        selector = spec["selector"].get("matchLabels", spec["selector"])
        assert selector.items() <= pods.items(), name
    assert _one("Service", "llmtap-headless")["spec"]["clusterIP"] == "None"
    target = _one("HorizontalPodAutoscaler", "llmtap")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "llmtap")


def test_configmaps_and_files_the_pods_read_are_generated() -> None:
    llmtap = _container("llmtap", "llmtap")
    assert llmtap["args"] == ["serve", "--config", "/etc/llmtap/llmtap.yaml"]
    assert "llmtap.yaml" in _generated("llmtap-config")
    assert _container("llmtap", "sampler")["args"][-1] == "/etc/otelcol/sampler.yaml"
    assert _container("otel-router", "router")["args"][-1] == "/etc/otelcol/router-k8s.yaml"
    assert {"router-k8s.yaml", "sampler.yaml"} <= set(_generated("collector-config"))
    for deployment in ("llmtap", "otel-router"):
        spec = _one("Deployment", deployment)["spec"]["template"]["spec"]
        for volume in spec["volumes"]:
            if "configMap" in volume:
                name = volume["configMap"]["name"]
                assert any(g["name"] == name for g in KUSTOMIZATION["configMapGenerator"]), name


def test_collector_env_matches_the_config_variables() -> None:
    """Variables without a default are set; every variable set is one the config reads."""
    own = {"GOMEMLIMIT", "POD_NAMESPACE"}
    for deployment, container, key in (
        ("llmtap", "sampler", "sampler.yaml"),
        ("otel-router", "router", "router-k8s.yaml"),
    ):
        text = (K8S / _generated("collector-config")[key]).read_text()
        refs = {m.group(1): bool(m.group(2)) for m in _ENV_REF.finditer(text)}
        env = set(_env(_container(deployment, container))) - own
        assert not {n for n, default in refs.items() if not default} - env, key
        assert not env - set(refs), f"{container}: {key} reads none of {sorted(env - set(refs))}"


def test_the_router_resolves_the_headless_service() -> None:
    env = _env(_container("otel-router", "router"))
    assert env["SAMPLER_K8S_SERVICE"] == "llmtap-headless.$(POD_NAMESPACE)"
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert yaml.safe_load(env["SAMPLER_PORTS"]) == [4317]


def test_the_service_pods_load_their_llmtap_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    llmtap = _container("llmtap", "llmtap")
    for name, value in _env(llmtap).items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
    service = service_config_of(load_config(str(K8S / _generated("llmtap-config")["llmtap.yaml"])))
    ports = {p["name"]: p["containerPort"] for p in llmtap["ports"]}
    assert parse_address(service.metrics_address or "")[1] == ports["metrics"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert llmtap[probe]["httpGet"] == {"path": "/health", "port": "metrics"}
    # the sampler in the pod sends to the service's gRPC listener
    sampler_target = _env(_container("llmtap", "sampler"))["LLMTAP_SERVICE_ENDPOINT"]
    assert sampler_target == service.grpc_address
    assert service.http_address is None
    annotations = _one("Deployment", "llmtap")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(ports["metrics"])


def test_the_headless_service_reaches_the_sampler() -> None:
    (port,) = _one("Service", "llmtap-headless")["spec"]["ports"]
    sampler = _container("llmtap", "sampler")
    ports = {p["name"]: p["containerPort"] for p in sampler["ports"]}
    assert port["targetPort"] == "otlp-grpc" and ports["otlp-grpc"] == port["port"] == 4317
    assert _env(sampler)["COLLECTOR_OTLP_GRPC_ENDPOINT"].endswith(":4317")


def test_the_router_may_watch_endpoints() -> None:
    spec = _one("Deployment", "otel-router")["spec"]["template"]["spec"]
    binding = _one("RoleBinding", "otel-router-resolver")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": spec["serviceAccountName"]}]
    role = _one("Role", binding["roleRef"]["name"])
    granted = {
        (group, resource): set(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    for key in (("", "endpoints"), ("discovery.k8s.io", "endpointslices")):
        assert granted[key] == {"get", "list", "watch"}, key


def test_pods_run_locked_down() -> None:
    for deployment in ("llmtap", "otel-router"):
        pod = _one("Deployment", deployment)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])
            assert "readinessProbe" in container and "livenessProbe" in container


def test_generator_files_are_in_the_repository() -> None:
    files = [
        K8S / f.split("=", 1)[-1]
        for g in KUSTOMIZATION["configMapGenerator"]
        for f in g.get("files", [])
    ]
    for path in files:
        assert Path(path).resolve().is_relative_to(ROOT)


_QUANTITY = {"Mi": 2**20, "Gi": 2**30}


def _bytes(quantity: str) -> int:
    number, unit = quantity[:-2], quantity[-2:]
    return int(number) * _QUANTITY[unit]


@pytest.mark.parametrize(
    ("deployment", "container", "key"),
    [("llmtap", "sampler", "sampler.yaml"), ("otel-router", "router", "router-k8s.yaml")],
)
def test_collectors_keep_their_queues_on_a_volume(
    deployment: str, container: str, key: str
) -> None:
    """The sending queues (file_storage) live on a writable volume at COLLECTOR_QUEUE_DIR,
    large enough for every queue of the config at its byte bound."""
    config = yaml.safe_load((K8S / _generated("collector-config")[key]).read_text())
    spec = _one("Deployment", deployment)["spec"]["template"]["spec"]
    env = _env(_container(deployment, container))
    (mount,) = [
        m
        for m in _container(deployment, container)["volumeMounts"]
        if m["mountPath"] == env["COLLECTOR_QUEUE_DIR"]
    ]
    assert not mount.get("readOnly", False)
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    queues = [e for e in config["exporters"].values() if e["sending_queue"].get("storage")]
    bound = re.fullmatch(
        r"\$\{env:COLLECTOR_QUEUE_MAX_BYTES:-(\d+)\}", queues[0]["sending_queue"]["queue_size"]
    )
    assert bound, queues[0]["sending_queue"]
    per_queue = int(env.get("COLLECTOR_QUEUE_MAX_BYTES", bound.group(1)))
    # bbolt's file outgrows the queued bytes (free pages until compaction): room for half more
    assert _bytes(volume["emptyDir"]["sizeLimit"]) >= 1.5 * len(queues) * per_queue


def test_the_service_keeps_its_durable_queues_on_a_volume() -> None:
    """service.queue_dir of deploy/llmtap.yaml is a writable volume of the llmtap container,
    with room for both destinations' queues at their default byte bound."""
    config = (ROOT / "deploy/llmtap.yaml").read_text()
    queue_dir = re.search(r"queue_dir: \$\{env:LLMTAP_QUEUE_DIR:-([^}]+)\}", config).group(1)
    (mount,) = [
        m for m in _container("llmtap", "llmtap")["volumeMounts"] if m["mountPath"] == queue_dir
    ]
    assert not mount.get("readOnly", False)
    spec = _one("Deployment", "llmtap")["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    destinations = len(yaml.safe_load(config.replace("${env:", "${"))["export"])
    assert _bytes(volume["emptyDir"]["sizeLimit"]) >= destinations * 128 * 1024 * 1024
