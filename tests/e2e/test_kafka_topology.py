"""The scaled topology with a Kafka buffer, with a real broker (Apache Kafka in KRaft mode,
``support.kafka_broker``): spans sent to the router (collector-config/router-kafka.yaml) go
to a Kafka topic keyed by trace ID; two samplers (sampler-kafka.yaml) read it in one consumer
group, each owning some of the topic's partitions, and send what they keep to their own
destination. Every span arrives, and all spans of a trace arrive at the same sampler's
destination although each span travelled in its own export call and Kafka message; when a
sampler leaves, the other takes over its partitions."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from support.binaries import CONFIG_DIR, Proc, Processes, http_get, start_collector, wait_until
from support.kafka_broker import KafkaBroker, start_kafka
from support.otlp_receiver import OtlpReceiver
from support.otlp_sender import SentSpan, interleave, make_traces, send_spans

pytestmark = pytest.mark.e2e

PARTITIONS = 4


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One broker for the module; each test uses its own topic and consumer group."""
    data = tmp_path_factory.mktemp("kafka")
    with Processes(data / "logs") as group:
        yield start_kafka(group, data / "broker", partitions=PARTITIONS)


def _owned_partitions(sampler: Proc) -> float:
    """Partitions the sampler's kafka receiver owns now (started minus finished)."""
    body = http_get(sampler.url("telemetry", "/metrics"))[1].decode()
    total = 0.0
    for name, sign in (("start", 1), ("close", -1)):
        metric = rf"^otelcol_kafka_receiver_partition_{name}\S* (\S+)$"
        for match in re.finditer(metric, body, re.M):
            total += sign * float(match.group(1))
    return total


def _start_samplers(
    procs: Processes, kafka: KafkaBroker, topic: str, destinations: list[OtlpReceiver]
) -> list[Proc]:
    group = f"samplers-{uuid.uuid4().hex[:8]}"
    return [
        start_collector(
            procs,
            CONFIG_DIR / "sampler-kafka.yaml",
            f"sampler-{i}",
            {
                "KAFKA_BROKERS": f"[{kafka.bootstrap}]",
                "KAFKA_TRACES_TOPIC": topic,
                "KAFKA_GROUP_ID": group,
                "LLMTAP_SERVICE_ENDPOINT": f"127.0.0.1:{destination.grpc_port}",
                "SAMPLER_DECISION_WAIT": "1s",
            },
        )
        for i, destination in enumerate(destinations)
    ]


def _settled_samplers(
    procs: Processes, kafka: KafkaBroker, topic: str, destinations: list[OtlpReceiver]
) -> list[Proc]:
    """Two samplers in one consumer group, once the group has settled: each owns half of
    the partitions."""
    samplers = _start_samplers(procs, kafka, topic, destinations)
    wait_until(
        lambda: [_owned_partitions(s) for s in samplers] == [PARTITIONS / 2] * 2,
        timeout=30,
        what="the two samplers to own two partitions each",
    )
    return samplers


def test_router_to_kafka_to_samplers_one_trace_one_sampler(
    procs: Processes, kafka: KafkaBroker
) -> None:
    topic = f"spans-{uuid.uuid4().hex[:8]}"
    kafka.create_topic(topic, PARTITIONS)
    with OtlpReceiver() as first, OtlpReceiver() as second:
        destinations = [first, second]
        _settled_samplers(procs, kafka, topic, destinations)
        router = start_collector(
            procs,
            CONFIG_DIR / "router-kafka.yaml",
            "router",
            {
                "KAFKA_BROKERS": f"[{kafka.bootstrap}]",
                "KAFKA_TRACES_TOPIC": topic,
                "PROMETHEUS_OTLP_METRICS_URL": first.http_url("metrics"),
            },
        )
        traces = make_traces(count=24, spans_per_trace=4)
        acknowledged = send_spans(router.endpoint("grpc"), interleave(traces))
        assert len(acknowledged) == 96

        wait_until(
            lambda: len(first.spans()) + len(second.spans()) >= len(acknowledged),
            timeout=30,
            what=f"{len(acknowledged)} spans at the samplers' destinations",
        )
        arrived = [(s.trace_id, s.span_id) for d in destinations for s in d.spans()]
        assert sorted(arrived) == sorted((s.trace_id, s.span_id) for s in acknowledged)
        by_destination = [{s.trace_id for s in d.spans()} for d in destinations]
        # one trace, one partition, one sampler; and both samplers had traces to sample
        assert not by_destination[0] & by_destination[1]
        assert all(by_destination), [len(ids) for ids in by_destination]


def test_a_sampler_that_leaves_hands_its_partitions_to_the_other(
    procs: Processes, kafka: KafkaBroker
) -> None:
    """Scaling down: one sampler stops; the group gives all partitions to the other, which
    reads on from the committed offsets: the spans sent afterwards all arrive there."""
    topic = f"spans-{uuid.uuid4().hex[:8]}"
    kafka.create_topic(topic, PARTITIONS)
    with OtlpReceiver() as first, OtlpReceiver() as second:
        samplers = _settled_samplers(procs, kafka, topic, [first, second])
        router = start_collector(
            procs,
            CONFIG_DIR / "router-kafka.yaml",
            "router",
            {"KAFKA_BROKERS": f"[{kafka.bootstrap}]", "KAFKA_TRACES_TOPIC": topic},
        )
        before = send_spans(router.endpoint("grpc"), interleave(make_traces(8, 3)))
        first.wait_for(lambda: len(first.spans()) + len(second.spans()) >= len(before), 30)
        assert samplers[1].stop() == 0
        wait_until(
            lambda: _owned_partitions(samplers[0]) == PARTITIONS,
            timeout=30,
            what="the remaining sampler to own every partition",
        )
        after = send_spans(router.endpoint("grpc"), interleave(make_traces(8, 3)))
        assert len(before) == len(after) == 24
        first.wait_for(lambda: len({s.span_id for s in first.spans()} & _ids(after)) == 24, 30)
        arrived = [s.span_id for d in (first, second) for s in d.spans()]
        assert sorted(arrived) == sorted(_ids(before) | _ids(after))


def _ids(spans: list[SentSpan]) -> set[str]:
    return {s.span_id for s in spans}
