"""Nothing a collector acknowledged is lost when it crashes: the configs of collector-config/
keep their sending queues on disk (``file_storage``). With the destination down, spans sent to
the collector are acknowledged and queued; the collector is killed with SIGKILL (no shutdown,
no flush), started again on the same queue directory, the destination comes up, and every
acknowledged span arrives there."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from support.binaries import CONFIG_DIR, Processes, free_port, http_get, start_collector
from support.otlp_receiver import OtlpReceiver
from support.otlp_sender import interleave, make_traces, send_spans

pytestmark = pytest.mark.e2e

# config -> the variable naming the destination of its traces
DESTINATIONS = {
    "router.yaml": "SAMPLER_ENDPOINTS",  # load_balancing, static list of samplers
    "single.yaml": "LLMTAP_SERVICE_ENDPOINT",  # otlp_grpc to the llmtap service
}


def _queued_bytes(metrics: str) -> float:
    """otelcol_exporter_queue_size of the traces exporter (bytes: the configs' sizer)."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("otelcol_exporter_queue_size{") and 'data_type="traces"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.parametrize("config", sorted(DESTINATIONS))
def test_acknowledged_spans_survive_a_killed_collector(
    config: str, procs: Processes, tmp_path: Path
) -> None:
    port = free_port()
    target = f"127.0.0.1:{port}"
    env = {
        DESTINATIONS[config]: f"[{target}]" if config == "router.yaml" else target,
        "COLLECTOR_QUEUE_DIR": str(tmp_path / "queue"),
        "PROMETHEUS_OTLP_METRICS_URL": f"http://127.0.0.1:{free_port()}/v1/metrics",
    }
    collector = start_collector(procs, CONFIG_DIR / config, "collector", env)
    traces = make_traces(count=12, spans_per_trace=5)
    acknowledged = send_spans(collector.endpoint("grpc"), interleave(traces))
    assert len(acknowledged) == 60  # the destination is down, yet all were accepted

    def queued() -> float:
        return _queued_bytes(http_get(collector.url("telemetry", "/metrics"))[1].decode())

    assert queued() > 0, "nothing waits in the sending queue"
    collector.popen.send_signal(signal.SIGKILL)
    assert collector.popen.wait(10) == -signal.SIGKILL
    assert list((tmp_path / "queue").iterdir()), "the queue directory is empty"

    restarted = start_collector(procs, CONFIG_DIR / config, "collector-restarted", env)
    with OtlpReceiver(grpc_port=port) as destination:
        spans = destination.wait_for_spans(len(acknowledged), timeout=45)
    arrived = {(s.trace_id, s.span_id) for s in spans}
    assert arrived == {(s.trace_id, s.span_id) for s in acknowledged}
    assert restarted.running()
