"""The durable queue: a write-ahead log per destination, read back after a stop or a crash,
and the service's promise built on it (what was acknowledged is sent, at least once)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmtap.service.wal import QueueDirInUse, WriteAheadLog, directory_name
from support.otlp_receiver import OtlpReceiver
from support.running_service import (
    by_span_id,
    grpc_call,
    grpc_export,
    metric_value,
    metrics_text,
    running_service,
    simple_spans,
    span_request,
    wait_until,
)


def _log_with(tmp_path: Path, spans: list[int], **kw: object) -> WriteAheadLog:
    wal = WriteAheadLog(tmp_path / "q", **kw)  # type: ignore[arg-type]
    assert wal.recover() == []
    for i, n in enumerate(spans):
        wal.append(f"record-{i}".encode(), n)
    return wal


def test_what_was_not_delivered_is_read_back_in_order(tmp_path: Path) -> None:
    wal = _log_with(tmp_path, [2, 3, 4])
    wal.delivered(3)  # record 0 and one span of record 1
    wal.close()
    again = WriteAheadLog(tmp_path / "q")
    records = again.recover()
    assert [(r.payload, r.spans, r.skip) for r in records] == [
        (b"record-1", 3, 1),
        (b"record-2", 4, 0),
    ]
    again.delivered(6)  # the rest of record 1 and all of record 2
    again.append(b"record-3", 1)
    again.close()
    assert [r.payload for r in WriteAheadLog(tmp_path / "q").recover()] == [b"record-3"]


def test_a_torn_last_record_is_cut_off_and_appends_after_it_stay_readable(
    tmp_path: Path,
) -> None:
    wal = _log_with(tmp_path, [1, 1])
    wal.close()
    (segment,) = (tmp_path / "q").glob("*.wal")
    with open(segment, "ab") as fh:
        fh.write(b"\x40\x00\x00\x00\x01\x02")  # half a header: a crash mid-write
    wal = WriteAheadLog(tmp_path / "q")
    assert [r.payload for r in wal.recover()] == [b"record-0", b"record-1"]
    wal.append(b"record-2", 1)
    wal.close()
    records = WriteAheadLog(tmp_path / "q").recover()
    assert [r.payload for r in records] == [b"record-0", b"record-1", b"record-2"]


def test_a_corrupt_record_ends_what_is_read_back(tmp_path: Path) -> None:
    wal = _log_with(tmp_path, [1, 1, 1])
    wal.close()
    (segment,) = (tmp_path / "q").glob("*.wal")
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF  # a flipped byte in the last payload: its CRC no longer matches
    segment.write_bytes(bytes(data))
    assert [r.payload for r in WriteAheadLog(tmp_path / "q").recover()] == [
        b"record-0",
        b"record-1",
    ]


def test_delivered_segments_are_deleted(tmp_path: Path) -> None:
    wal = _log_with(tmp_path, [1] * 40, segment_bytes=64)
    assert len(list((tmp_path / "q").glob("*.wal"))) > 5
    wal.delivered(40)
    assert len(list((tmp_path / "q").glob("*.wal"))) == 1
    assert wal.bytes == 0
    wal.close()
    assert WriteAheadLog(tmp_path / "q").recover() == []


def test_one_directory_serves_one_process(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "q")
    with pytest.raises(QueueDirInUse, match="in use by another process"):
        WriteAheadLog(tmp_path / "q")
    wal.close()
    WriteAheadLog(tmp_path / "q").close()


def test_destination_names_become_safe_distinct_directory_names() -> None:
    assert directory_name("jaeger") == "jaeger"
    names = {directory_name(n) for n in ("otlp#0", "otlp_0", "otlp/0", "../x")}
    assert len(names) == 4
    assert all(os.sep not in n and not n.startswith(".") for n in names)


def test_spans_queued_at_stop_are_kept_on_disk_and_sent_after_the_next_start(
    tmp_path: Path,
) -> None:
    queue_dir = tmp_path / "queues"
    with OtlpReceiver() as rx:
        rx.fail_next(10_000)  # the backend is down for the whole first run
        with running_service(
            tmp_path, [grpc_export(rx)], queue_dir=str(queue_dir), stop_timeout=0.5
        ) as app:
            for seed in range(3):
                grpc_call(app, span_request(simple_spans(50, seed=seed)).SerializeToString())
            assert app.counters()["accepted"] == 150
            report = app.stop(0.5)
        assert rx.spans() == []
        assert list((queue_dir / directory_name("otlp#0")).glob("*.wal"))
        rx.fail_next(0)
        with running_service(tmp_path, [grpc_export(rx)], queue_dir=str(queue_dir)) as again:
            spans = rx.wait_for_spans(150, timeout=15)
            wait_until(lambda: again.counters()["forwarded"]["otlp#0"] == 150)
            text = metrics_text(again)
    assert report.kept == {"otlp#0": 150}
    assert not report.drained
    assert report.dropped == {"otlp#0": 0}
    assert len(by_span_id(spans)) == 150
    assert len(spans) == 150
    resent = metric_value(
        text, "llmtap_service_spans_resent_total", destination="otlp#0", reason="replay"
    )
    assert resent == 150


def test_a_queue_that_cannot_be_written_answers_retryable_and_takes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk is injected by replacing the log's low-level write (no real disk can be
    filled here safely); the sender is told to retry, and the spans are not counted as
    taken."""
    import errno

    import grpc

    import llmtap.service.wal as wal_module

    def disk_full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with (
        OtlpReceiver() as rx,
        running_service(tmp_path, [grpc_export(rx)], queue_dir=str(tmp_path / "q")) as app,
    ):
        monkeypatch.setattr(wal_module, "_write_all", disk_full)
        with pytest.raises(grpc.RpcError) as caught:
            grpc_call(app, span_request(simple_spans(4)).SerializeToString())
        monkeypatch.undo()
        grpc_call(app, span_request(simple_spans(4, seed=2)).SerializeToString())
        rx.wait_for_spans(4)
        counters = app.counters()
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "No space left on device" in caught.value.details()
    assert counters["rejected"]["queue_write_failed"] == 4
    assert counters["accepted"] == 4
