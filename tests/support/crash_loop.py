"""``kill -9`` of a real ``llmtap serve`` under load, again and again (no tests here; used by
tests/service/test_crash_recovery.py and bench/service_durability.py).

A sender thread exports requests of ``batch`` spans over OTLP/gRPC the way an SDK exporter
does, paced to spread over the whole loop: a request that fails is sent again until it is
acknowledged, and only acknowledged spans count. Meanwhile the service is killed with
SIGKILL at random moments and started again on the same queue directory; the backend (an
in-process OTLP receiver) is down for the first half of the run, so spans are queued when
the kills land. At the end the backend is up and every acknowledged span must arrive.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import yaml

from support.binaries import Proc, Processes, start_llmtap_serve
from support.otlp_receiver import OtlpReceiver
from support.running_service import EXPORT, span_request

_SPAN_ID_STRIDE = 7919  # support.running_service.ids: span ids of one seed stay below it


@dataclass
class CrashLoopResult:
    acknowledged: int
    arrived: int  # distinct spans at the backend
    duplicates: int  # spans that arrived more than once (extra copies)
    lost: int  # acknowledged spans that never arrived
    kills: int
    seconds: float


class _Sender(threading.Thread):
    def __init__(self, total: int, batch: int, seconds: float) -> None:
        super().__init__(name="crash-loop-sender", daemon=True)
        self.total, self.batch = total, batch
        self.interval = seconds / max(1, total // batch)  # paced over the kills
        self.target = ""
        self.acked: set[bytes] = set()
        self.stopped = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        started = time.monotonic()
        for seed in range(1, self.total // self.batch + 1):
            time.sleep(max(0.0, started + seed * self.interval - time.monotonic()))
            request = span_request(_spans(self.batch, seed)).SerializeToString()
            while not self.stopped.is_set():
                if self._send(request):
                    ids = {bytes(s.span_id) for s in _parsed_spans(request)}
                    with self.lock:
                        self.acked |= ids
                    break
                time.sleep(0.05)

    def _send(self, request: bytes) -> bool:
        try:
            with grpc.insecure_channel(self.target) as channel:
                channel.unary_unary(EXPORT)(request, timeout=3)
            return True
        except grpc.RpcError:
            return False


def _spans(n: int, seed: int) -> list[dict]:
    from support.running_service import simple_spans

    assert n < _SPAN_ID_STRIDE
    return simple_spans(n, seed=seed)


def _parsed_spans(request: bytes) -> list:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    message = ExportTraceServiceRequest.FromString(request)
    return [s for rs in message.resource_spans for ss in rs.scope_spans for s in ss.spans]


def _config(tmp: Path, rx: OtlpReceiver, fsync: bool, durable: bool) -> Path:
    path = tmp / "llmtap.yaml"
    service = {"queue_dir": str(tmp / "queues"), "queue_fsync": fsync} if durable else {}
    config = {
        "export": [{"preset": "otlp", "endpoint": rx.grpc_endpoint, "protocol": "grpc"}],
        "service": service,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def run_crash_loop(
    tmp: Path,
    *,
    total: int,
    kills: int,
    batch: int = 100,
    seed: int = 0,
    fsync: bool = False,
    durable: bool = True,
) -> CrashLoopResult:
    rng = random.Random(seed)
    started = time.monotonic()
    with OtlpReceiver() as rx, Processes(tmp / "logs") as procs:
        config = _config(tmp, rx, fsync, durable)
        rx.fail_next(1 << 30)  # down for the first half
        proc = start_llmtap_serve(procs, config, name="llmtap-0")
        sender = _Sender(total, batch, seconds=kills * 1.4)
        sender.target = proc.endpoint("grpc")
        sender.start()
        for kill in range(kills):
            time.sleep(rng.uniform(0.3, 1.5))
            proc.popen.kill()
            proc.popen.wait(10)
            if kill == kills // 2:
                rx.fail_next(0)  # the backend is back
            proc = _restart(procs, config, kill + 1)
            sender.target = proc.endpoint("grpc")
        rx.fail_next(0)
        sender.join(timeout=300)
        sender.stopped.set()
        with sender.lock:
            acked = set(sender.acked)
        _wait_for(rx, acked, timeout=60 if durable else 5)
        received = [bytes.fromhex(s.span_id) for s in rx.spans()]
        proc.stop()
    distinct = set(received)
    return CrashLoopResult(
        acknowledged=len(acked),
        arrived=len(distinct & acked),
        duplicates=len(received) - len(distinct),
        lost=len(acked - distinct),
        kills=kills,
        seconds=time.monotonic() - started,
    )


def _restart(procs: Processes, config: Path, n: int) -> Proc:
    return start_llmtap_serve(procs, config, name=f"llmtap-{n}")


def _wait_for(rx: OtlpReceiver, acked: set[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if acked <= {bytes.fromhex(s.span_id) for s in rx.spans()}:
            return
        time.sleep(0.25)
