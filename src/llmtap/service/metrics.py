"""The service's Prometheus metrics: a small registry and the ``GET /metrics`` endpoint.

Hand-written text exposition format (0.0.4) rather than ``prometheus_client`` or the
OpenTelemetry Prometheus exporter: three metric kinds are all the service needs, the
format is small and stable, and the package keeps no extra dependency. Any part of the
service (the judge side too) registers its own metrics on the app's registry::

    evals = app.metrics.counter(
        "llmtap_evaluations_total", "Evaluations run", labels=("evaluator", "outcome")
    )
    evals.inc(evaluator="faithfulness", outcome="pass")
    latency = app.metrics.histogram(
        "llmtap_judge_latency_seconds", "Judge call latency", labels=("evaluator",)
    )
    latency.observe(0.21, evaluator="faithfulness")
    app.metrics.gauge_callback("llmtap_traces_pending", "Traces waiting", lambda: {(): 12})

Every metric keeps at most ``max_series`` label sets; later new label sets are folded
into one series whose label values are all ``other`` (label values often come from span
data: models, features).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "DEFAULT_BUCKETS",
    "Counter",
    "Gauge",
    "Histogram",
    "MetricsRegistry",
    "MetricsServer",
]

_log = logging.getLogger("llmtap.service")

DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
OTHER = "other"
_INF_LE = 'le="+Inf"'
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def _format_value(value: float) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _label_text(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape_label(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = "untyped"

    def __init__(
        self, name: str, help: str, labels: Sequence[str] = (), max_series: int = 1000
    ) -> None:
        if not _NAME.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        for label in labels:
            if not _LABEL.match(label) or label.startswith("__") or label == "le":
                raise ValueError(f"invalid label name {label!r} for metric {name}")
        self.name = name
        self.help = help
        self.label_names = tuple(labels)
        self.max_series = max(1, max_series)
        self._lock = threading.Lock()

    def _key(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[str, ...]:
        if kwargs:
            if args:
                raise TypeError(f"{self.name}: give label values by position or by name")
            try:
                args = [kwargs[n] for n in self.label_names]
            except KeyError as exc:
                raise TypeError(f"{self.name}: missing label {exc.args[0]!r}") from None
            if len(kwargs) != len(self.label_names):
                unknown = set(kwargs) - set(self.label_names)
                raise TypeError(f"{self.name}: unknown label(s) {sorted(unknown)}")
        elif len(args) != len(self.label_names):
            raise TypeError(
                f"{self.name}: expected {len(self.label_names)} label value(s) "
                f"{self.label_names}, got {len(args)}"
            )
        return tuple("" if v is None else str(v) for v in args)

    def _admit(self, series: dict, key: tuple[str, ...]) -> tuple[str, ...]:
        """The series key to use: ``key``, or the all-``other`` series past the cap."""
        if key in series or len(series) < self.max_series:
            return key
        return (OTHER,) * len(key)

    def samples(self) -> Iterable[str]:  # pragma: no cover - overridden
        return ()

    def render(self) -> str:
        head = f"# HELP {self.name} {_escape_help(self.help)}\n# TYPE {self.name} {self.kind}\n"
        body = "".join(line + "\n" for line in self.samples())
        return head + body


class _CounterChild:
    __slots__ = ("_cell", "_lock")

    def __init__(self, cell: list[float], lock: threading.Lock) -> None:
        self._cell = cell
        self._lock = lock

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        with self._lock:
            self._cell[0] += amount


class Counter(_Metric):
    """A monotonically increasing total (name it ``*_total``)."""

    kind = "counter"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._series: dict[tuple[str, ...], list[float]] = {}
        if not self.label_names:
            self._series[()] = [0]

    def labels(self, *values: Any, **named: Any) -> _CounterChild:
        key = self._key(values, named)
        with self._lock:
            key = self._admit(self._series, key)
            cell = self._series.get(key)
            if cell is None:
                cell = self._series[key] = [0]
        return _CounterChild(cell, self._lock)

    def inc(self, amount: float = 1, **labels: Any) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key((), labels) if labels or self.label_names else ()
        with self._lock:
            key = self._admit(self._series, key)
            cell = self._series.get(key)
            if cell is None:
                cell = self._series[key] = [0]
            cell[0] += amount

    def inc_many(self, amounts: Mapping[tuple[str, ...], float]) -> None:
        """``inc`` for several series at once: label values in ``label_names`` order (strings)
        to a non-negative amount; the lock is taken once."""
        width = len(self.label_names)
        for key, amount in amounts.items():
            if amount < 0 or len(key) != width:
                raise ValueError(f"{self.name}: bad increment {key!r}: {amount!r}")
        with self._lock:
            series = self._series
            for key, amount in amounts.items():
                cell = series.get(key)
                if cell is None:
                    cell = series.setdefault(self._admit(series, key), [0])
                cell[0] += amount

    def value(self, **labels: Any) -> float:
        """The current total of one series (0 when it was never incremented)."""
        key = self._key((), labels) if labels or self.label_names else ()
        with self._lock:
            cell = self._series.get(key)
            return cell[0] if cell else 0

    def total(self, **match: Any) -> float:
        """The sum over every series whose labels include ``match``."""
        idx = [(self.label_names.index(k), str(v)) for k, v in match.items()]
        with self._lock:
            return sum(
                cell[0] for key, cell in self._series.items() if all(key[i] == v for i, v in idx)
            )

    def samples(self) -> Iterable[str]:
        with self._lock:
            items = [(k, c[0]) for k, c in self._series.items()]
        for key, value in sorted(items):
            yield f"{self.name}{_label_text(self.label_names, key)} {_format_value(value)}"


class Gauge(_Metric):
    """A value that goes up and down; or computed at scrape time with ``set_function``."""

    kind = "gauge"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._series: dict[tuple[str, ...], float] = {}
        self._function: Callable[[], Mapping[tuple, float] | float] | None = None

    def set(self, value: float, **labels: Any) -> None:
        key = self._key((), labels)
        with self._lock:
            self._series[self._admit(self._series, key)] = value

    def inc(self, amount: float = 1, **labels: Any) -> None:
        key = self._key((), labels)
        with self._lock:
            key = self._admit(self._series, key)
            self._series[key] = self._series.get(key, 0) + amount

    def dec(self, amount: float = 1, **labels: Any) -> None:
        self.inc(-amount, **labels)

    def set_function(self, fn: Callable[[], Mapping[tuple, float] | float]) -> None:
        """Compute the values at scrape time: ``fn()`` returns a number (no labels) or a
        mapping of label-value tuples to numbers."""
        self._function = fn

    def value(self, **labels: Any) -> float | None:
        key = self._key((), labels)
        for k, v in self._current():
            if k == key:
                return v
        return None

    def _current(self) -> list[tuple[tuple[str, ...], float]]:
        if self._function is not None:
            try:
                got = self._function()
            except Exception:
                _log.debug("metric %s: callback failed", self.name, exc_info=True)
                return []
            if not isinstance(got, Mapping):
                return [((), got)]
            return [(tuple(str(v) for v in k), float(v)) for k, v in got.items()]
        with self._lock:
            return list(self._series.items())

    def samples(self) -> Iterable[str]:
        for key, value in sorted(self._current()):
            if len(key) != len(self.label_names):
                continue
            yield f"{self.name}{_label_text(self.label_names, key)} {_format_value(value)}"


class Histogram(_Metric):
    """Observations counted in cumulative buckets, with their sum and count."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        max_series: int = 1000,
    ) -> None:
        super().__init__(name, help, labels, max_series)
        bounds = sorted(float(b) for b in buckets if not math.isinf(b))
        if not bounds:
            raise ValueError(f"{name}: needs at least one finite bucket bound")
        self.buckets = tuple(bounds)
        # per series: [count per bucket..., +Inf count, sum]
        self._series: dict[tuple[str, ...], list[float]] = {}

    def observe(self, value: float, **labels: Any) -> None:
        key = self._key((), labels) if labels or self.label_names else ()
        index = len(self.buckets)
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                index = i
                break
        with self._lock:
            key = self._admit(self._series, key)
            cells = self._series.get(key)
            if cells is None:
                cells = self._series[key] = [0] * (len(self.buckets) + 1) + [0.0]
            cells[index] += 1
            cells[-1] += value

    def observe_many(self, values: Sequence[float], **labels: Any) -> None:
        """``observe`` for each of ``values`` (one series), taking the lock once."""
        if not values:
            return
        key = self._key((), labels) if labels or self.label_names else ()
        buckets = self.buckets
        indexes = [bisect_left(buckets, v) for v in values]
        with self._lock:
            key = self._admit(self._series, key)
            cells = self._series.get(key)
            if cells is None:
                cells = self._series[key] = [0] * (len(buckets) + 1) + [0.0]
            for index in indexes:
                cells[index] += 1
            cells[-1] += sum(values)

    def count(self, **labels: Any) -> int:
        key = self._key((), labels) if labels or self.label_names else ()
        with self._lock:
            cells = self._series.get(key)
            return int(sum(cells[:-1])) if cells else 0

    def samples(self) -> Iterable[str]:
        with self._lock:
            items = [(k, list(c)) for k, c in self._series.items()]
        names = self.label_names
        for key, cells in sorted(items):
            running = 0
            for bound, n in zip(self.buckets, cells, strict=False):
                running += n
                le = f'le="{_format_value(bound)}"'
                yield f"{self.name}_bucket{_label_text(names, key, le)} {running}"
            running += cells[len(self.buckets)]
            yield f"{self.name}_bucket{_label_text(names, key, _INF_LE)} {running}"
            yield f"{self.name}_sum{_label_text(names, key)} {_format_value(cells[-1])}"
            yield f"{self.name}_count{_label_text(names, key)} {running}"


class MetricsRegistry:
    """Named metrics of one service; ``render()`` gives the Prometheus text format.

    Registering a name twice with the same kind and labels returns the existing metric
    (so two parts of the service can share one); anything else is an error.
    """

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._lock = threading.Lock()

    def _register(self, cls: type, name: str, help: str, labels: Sequence[str], **kw: Any) -> Any:
        with self._lock:
            existing = self._metrics.get(name)
            if existing is not None:
                if type(existing) is cls and existing.label_names == tuple(labels):
                    return existing
                raise ValueError(
                    f"metric {name!r} is already registered as a {existing.kind} with labels "
                    f"{existing.label_names}"
                )
            metric = cls(name, help, labels, **kw)
            self._metrics[name] = metric
            return metric

    def counter(
        self, name: str, help: str, labels: Sequence[str] = (), *, max_series: int = 1000
    ) -> Counter:
        return self._register(Counter, name, help, labels, max_series=max_series)

    def gauge(
        self, name: str, help: str, labels: Sequence[str] = (), *, max_series: int = 1000
    ) -> Gauge:
        return self._register(Gauge, name, help, labels, max_series=max_series)

    def gauge_callback(
        self,
        name: str,
        help: str,
        fn: Callable[[], Mapping[tuple, float] | float],
        labels: Sequence[str] = (),
    ) -> Gauge:
        gauge = self.gauge(name, help, labels)
        gauge.set_function(fn)
        return gauge

    def histogram(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        max_series: int = 1000,
    ) -> Histogram:
        return self._register(Histogram, name, help, labels, buckets=buckets, max_series=max_series)

    def get(self, name: str) -> _Metric | None:
        return self._metrics.get(name)

    def render(self) -> str:
        with self._lock:
            metrics = sorted(self._metrics.items())
        return "".join(m.render() for _, m in metrics)


# The endpoint ------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _MetricsHTTPServer
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            try:
                body = self.server.registry.render().encode()
            except Exception:
                _log.exception("rendering metrics failed")
                self._send(500, b"metrics failed\n", "text/plain")
                return
            self._send(200, body, CONTENT_TYPE)
        elif path in ("/health", "/healthz", "/"):
            ok = self.server.health()
            self._send(
                200 if ok else 503,
                b'{"status":"ok"}' if ok else b'{"status":"stopping"}',
                "application/json",
            )
        else:
            self._send(404, b"not found; try /metrics\n", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _MetricsHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], registry: MetricsRegistry, health: Callable[[], bool]
    ) -> None:
        self.registry = registry
        self.health = health
        super().__init__(address, _Handler)


class MetricsServer:
    """Serves ``GET /metrics`` (and ``/health``) on its own address."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: MetricsRegistry,
        health: Callable[[], bool] = lambda: True,
    ) -> None:
        self._server = _MetricsHTTPServer((host, port), registry, health)
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="llmtap-metrics",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
