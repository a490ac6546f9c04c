"""deploy/tempo/tempo.yaml holds only keys Grafana Tempo takes.

Tempo parses its config file with ``yaml.UnmarshalStrict`` (cmd/tempo/main.go), so one key it
does not know stops it. tests/e2e/test_tempo.py runs the file through the Tempo that
tools/build-otel-binaries.sh builds (``-config.verify``, then end to end; 2.9.0 by default).
This test needs no binary: the key names below were read from Tempo's config structs (their
``yaml:`` tags) at two tags of github.com/grafana/tempo:

- v2.9.0, deploy/compose.yaml's default ``TEMPO_VERSION``;
- v3.0.3, the newest release, which removed the ``ingester`` and ``compactor`` sections
  (CHANGELOG "Remove ingester module" #6959, "Removed ... compactor component" #6273;
  docs/sources/tempo/set-up-for-tracing/setup-tempo/migrate-to-3.md).

Files per section (both tags): top level cmd/tempo/app/config.go ``Config``; ``server``
vendor/github.com/grafana/dskit/server/server.go ``Config``; ``distributor``
modules/distributor/config.go ``Config``, its ``receivers`` are the OpenTelemetry Collector's
receivers listed in modules/distributor/receiver/shim.go, ``otlp`` being
vendor/go.opentelemetry.io/collector/receiver/otlpreceiver/config.go with configgrpc /
confighttp ``ServerConfig``; ``storage`` modules/storage/config.go, ``storage.trace``
tempodb/config.go, ``wal`` tempodb/wal/wal.go, ``local`` tempodb/backend/local/config.go;
``overrides`` modules/overrides/config.go (``Config``, ``Overrides``, ``CompactionOverrides``).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from .conftest import DEPLOY

TEMPO_YAML = DEPLOY / "tempo" / "tempo.yaml"

_TOP_BOTH = (
    "target auth_enabled multitenancy_enabled shutdown_delay stream_over_http_enabled "
    "http_api_prefix enable_go_runtime_metrics server internal_server distributor "
    "metrics_generator_client live_store_client querier query_frontend metrics_generator "
    "ingest block_builder storage overrides memberlist usage_report cache backend_scheduler "
    "backend_scheduler_client backend_worker live_store"
)
_SERVER = (
    "http_listen_network http_listen_address http_listen_port http_listen_conn_limit "
    "grpc_listen_network grpc_listen_address grpc_listen_port grpc_listen_conn_limit "
    "grpc_collect_max_streams_by_conn proxy_protocol_enabled tls_cipher_suites tls_min_version "
    "http_tls_config grpc_tls_config register_instrumentation "
    "report_grpc_codes_in_instrumentation_label_enabled graceful_shutdown_timeout "
    "http_server_read_timeout http_server_read_header_timeout http_server_write_timeout "
    "http_server_idle_timeout http_log_closed_connections_without_response_enabled "
    "grpc_server_max_recv_msg_size grpc_server_max_send_msg_size "
    "grpc_server_max_concurrent_streams grpc_server_max_connection_idle "
    "grpc_server_max_connection_age grpc_server_max_connection_age_grace "
    "grpc_server_keepalive_time grpc_server_keepalive_timeout "
    "grpc_server_min_time_between_pings grpc_server_ping_without_stream_allowed "
    "grpc_server_num_workers grpc_server_stats_tracking_enabled "
    "grpc_server_recv_buffer_pools_enabled log_format log_level log_source_ips_enabled "
    "log_source_ips_full log_source_ips_header log_source_ips_regex log_request_headers "
    "log_request_at_info_level_enabled log_request_exclude_headers_list trace_request_headers "
    "trace_request_exclude_headers_list http_path_prefix cluster_validation"
)
_DISTRIBUTOR_BOTH = (
    "ring receivers override_ring_key log_received_spans log_discarded_spans "
    "metric_received_spans forwarders usage kafka_config retry_after_on_resource_exhausted "
    "max_attribute_bytes artificial_delay"
)
_GRPC_SERVER = (
    "endpoint transport dialer tls max_recv_msg_size_mib max_concurrent_streams "
    "read_buffer_size write_buffer_size keepalive auth include_metadata middlewares"
)
_HTTP_SERVER = (
    "endpoint tls cors auth max_request_body_size include_metadata response_headers "
    "compression_algorithms read_timeout read_header_timeout write_timeout idle_timeout "
    "middlewares traces_url_path metrics_url_path logs_url_path"
)
_TEMPODB = (
    "pool wal block search blocklist_poll blocklist_poll_concurrency "
    "blocklist_poll_tenant_concurrency blocklist_poll_fallback "
    "blocklist_poll_tenant_index_builders blocklist_poll_stale_tenant_index "
    "blocklist_poll_jitter_ms blocklist_poll_tolerate_consecutive_errors "
    "blocklist_poll_tolerate_tenant_failures empty_tenant_deletion_enabled "
    "empty_tenant_deletion_age backend local gcs s3 azure cache background_cache memcached redis"
)
_OVERRIDES = (
    "defaults per_tenant_override_config per_tenant_override_period user_configurable_overrides"
)
_TENANT = "ingestion read compaction metrics_generator forwarders global storage cost_attribution"

_INGESTER_2 = (
    "lifecycler partition_ring concurrent_flushes flush_check_period flush_op_timeout "
    "trace_idle_period trace_live_period max_block_duration max_block_bytes "
    "complete_block_timeout override_ring_key flush_all_on_shutdown flush_object_storage"
)
_COMPACTION_2 = (
    "v2_in_buffer_bytes v2_out_buffer_bytes v2_prefetch_traces_count compaction_window "
    "max_compaction_objects max_block_bytes block_retention compacted_block_retention "
    "retention_concurrency max_time_per_tenant compaction_cycle"
)

#: the keys each mapping of the file may hold, by the mapping's path, in both versions
_COMMON = {
    "server": _SERVER,
    "distributor.receivers": "jaeger zipkin otlp kafka",
    "distributor.receivers.otlp": "protocols",
    "distributor.receivers.otlp.protocols": "grpc http",
    "distributor.receivers.otlp.protocols.grpc": _GRPC_SERVER,
    "distributor.receivers.otlp.protocols.http": _HTTP_SERVER,
    "storage": "trace",
    "storage.trace": _TEMPODB,
    "storage.trace.local": "path",
    "overrides": _OVERRIDES,
    "overrides.defaults": _TENANT,
    "overrides.defaults.compaction": "block_retention compaction_window compaction_disabled",
}
#: what each version adds to or changes in ``_COMMON``
_ONLY = {
    "v2.9.0": {
        "": f"{_TOP_BOTH} partition_ring_live_store ingester_client compactor ingester",
        "distributor": f"{_DISTRIBUTOR_BOTH} ingester_write_path_enabled "
        "kafka_write_path_enabled extend_writes",
        "distributor.receivers": "jaeger zipkin opencensus otlp kafka",
        "storage.trace.wal": "path v2_encoding search_encoding ingestion_time_range_slack version",
        # modules/ingester/config.go; modules/compactor/config.go and tempodb CompactorConfig
        "ingester": _INGESTER_2,
        "compactor": "disabled ring compaction override_ring_key",
        "compactor.compaction": _COMPACTION_2,
    },
    "v3.0.3": {
        "": f"{_TOP_BOTH} span_profiling memory",
        "server": f"{_SERVER} grpc_server_read_buffer_size grpc_server_write_buffer_size "
        "create_new_traces",
        "distributor": _DISTRIBUTOR_BOTH,
        "storage.trace.wal": "path ingestion_time_range_slack",
        "overrides": f"{_OVERRIDES} enable_legacy_overrides",
    },
}
VALID = {
    version: {path: set(words.split()) for path, words in {**_COMMON, **only}.items()}
    for version, only in _ONLY.items()
}


def key_paths(node: Any, path: str = "") -> list[tuple[str, str]]:
    """Every (mapping path, key) of a YAML document, depth first."""
    if not isinstance(node, dict):
        return []
    out = []
    for key, value in node.items():
        out.append((path, str(key)))
        out += key_paths(value, f"{path}.{key}" if path else str(key))
    return out


def unknown_keys(document: Any, version: str) -> list[str]:
    valid = VALID[version]
    return [
        f"{parent}.{key}" if parent else key
        for parent, key in key_paths(document)
        if key not in valid.get(parent, set())
    ]


@pytest.mark.parametrize("version", sorted(VALID))
def test_every_key_of_tempo_yaml_is_one_tempo_takes(version: str) -> None:
    assert unknown_keys(yaml.safe_load(TEMPO_YAML.read_text()), version) == []


def test_the_sections_tempo_3_removed_are_refused_there() -> None:
    # what the file held before: valid for 2.9.0, a start-up error for 3.0
    old = {"ingester": {"max_block_duration": "5m"},
           "compactor": {"compaction": {"block_retention": "48h"}}}  # fmt: skip
    assert unknown_keys(old, "v2.9.0") == []
    assert unknown_keys(old, "v3.0.3") == [
        "ingester",
        "ingester.max_block_duration",
        "compactor",
        "compactor.compaction",
        "compactor.compaction.block_retention",
    ]


def test_compose_pins_a_checked_tempo_version() -> None:
    compose = (DEPLOY / "compose.yaml").read_text()
    assert "grafana/tempo:${TEMPO_VERSION:-2.9.0}" in compose


def test_retention_is_kept_per_tenant_defaults() -> None:
    document = yaml.safe_load(TEMPO_YAML.read_text())
    assert document["overrides"]["defaults"]["compaction"]["block_retention"] == "48h"
