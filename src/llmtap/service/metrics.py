"""The service's Prometheus metrics, kept with ``prometheus_client``, and the ``GET /metrics``
endpoint.

Every part of the service (the judge too) declares its metrics on the app's registry, with
their Prometheus names::

    evals = app.metrics.counter(
        "llmtap_evaluations_total", "Evaluations run", labels=("evaluator", "outcome")
    )
    evals.inc(evaluator="faithfulness", outcome="pass")
    latency = app.metrics.histogram(
        "llmtap_judge_latency_seconds", "Judge call latency", labels=("evaluator",)
    )
    latency.observe(0.21, evaluator="faithfulness")
    app.metrics.gauge_callback("llmtap_traces_pending", "Traces waiting", lambda: {(): 12})

What this module adds to ``prometheus_client``: every metric keeps at most ``max_series``
label sets, later new label sets are folded into one series whose label values are all
``other`` (label values often come from span data: models, features); a cap on the distinct
values of one label shared by every metric that carries it (:meth:`MetricsRegistry.capped_values`:
the first ``limit`` prompt versions seen keep their name in every metric, later ones are
``other``); updates of several
series or values at once (``inc_many``, ``observe_many``); and reading a value back
(``value``, ``total``) for the service's stop report.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import prometheus_client
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

__all__ = [
    "DEFAULT_BUCKETS",
    "CappedValues",
    "Counter",
    "Gauge",
    "Histogram",
    "MetricsRegistry",
    "MetricsServer",
]

_log = logging.getLogger("llmtap.service")

# ``*_created`` series (an OpenMetrics notion) would double the families of the text format
prometheus_client.disable_created_metrics()

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
#: what ``prometheus_client.generate_latest`` writes
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Metric:
    """A metric: its name, help, label names and series cap."""

    kind = "untyped"

    def __init__(self, name: str, help: str, labels: Sequence[str], max_series: int) -> None:
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


class _Kept(_Metric):
    """A metric kept by ``prometheus_client`` (``_prom``), its series capped here."""

    _prom: Any

    def __init__(self, name: str, help: str, labels: Sequence[str], max_series: int) -> None:
        super().__init__(name, help, labels, max_series)
        self._children: dict[tuple[str, ...], Any] = {}
        self._sample_name = name

    def _child(self, key: tuple[str, ...]) -> Any:
        """The series of ``key``, or the all-``other`` series past the cap."""
        child = self._children.get(key)
        if child is not None:
            return child
        with self._lock:
            if key not in self._children and len(self._children) >= self.max_series:
                key = (OTHER,) * len(key)
            child = self._children.get(key)
            if child is None:
                child = self._prom.labels(*key) if key else self._prom
                self._children[key] = child
        return child

    def _samples(self, suffix: str = "") -> Iterable[tuple[dict[str, str], float]]:
        name = self._sample_name + suffix
        for family in self._prom.collect():
            for sample in family.samples:
                if sample.name == name:
                    yield sample.labels, sample.value


class Counter(_Kept):
    """A monotonically increasing total (name it ``*_total``)."""

    kind = "counter"

    def __init__(self, registry: Any, name: str, help: str, labels: Sequence[str], max_series: int):
        super().__init__(name, help, labels, max_series)
        self._prom = prometheus_client.Counter(name, help, self.label_names, registry=registry)
        self._sample_name = name if name.endswith("_total") else name + "_total"

    def labels(self, *values: Any, **named: Any) -> Any:
        return self._child(self._key(values, named))

    def inc(self, amount: float = 1, **labels: Any) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        self._child(self._key((), labels)).inc(amount)

    def inc_many(self, amounts: Mapping[tuple[str, ...], float]) -> None:
        """``inc`` for several series at once: label values in ``label_names`` order (strings)
        to a non-negative amount."""
        width = len(self.label_names)
        for key, amount in amounts.items():
            if amount < 0 or len(key) != width:
                raise ValueError(f"{self.name}: bad increment {key!r}: {amount!r}")
        for key, amount in amounts.items():
            self._child(key).inc(amount)

    def value(self, **labels: Any) -> float:
        """The current total of one series (0 when it was never incremented)."""
        want = dict(zip(self.label_names, self._key((), labels), strict=True))
        return next((v for got, v in self._samples() if got == want), 0)

    def total(self, **match: Any) -> float:
        """The sum over every series whose labels include ``match``."""
        want = {k: str(v) for k, v in match.items()}
        return sum(v for got, v in self._samples() if want.items() <= got.items())


class Gauge(_Kept):
    """A value that goes up and down."""

    kind = "gauge"

    def __init__(self, registry: Any, name: str, help: str, labels: Sequence[str], max_series: int):
        super().__init__(name, help, labels, max_series)
        self._prom = prometheus_client.Gauge(name, help, self.label_names, registry=registry)

    def set(self, value: float, **labels: Any) -> None:
        self._child(self._key((), labels)).set(value)

    def inc(self, amount: float = 1, **labels: Any) -> None:
        self._child(self._key((), labels)).inc(amount)

    def dec(self, amount: float = 1, **labels: Any) -> None:
        self.inc(-amount, **labels)

    def value(self, **labels: Any) -> float | None:
        want = dict(zip(self.label_names, self._key((), labels), strict=True))
        return next((v for got, v in self._samples() if got == want), None)


class _CallbackGauge:
    """A gauge computed at scrape time (a ``prometheus_client`` custom collector): ``fn()``
    returns a number (no labels) or a mapping of label-value tuples to numbers."""

    kind = "gauge"

    def __init__(
        self,
        name: str,
        help: str,
        fn: Callable[[], Mapping[tuple, float] | float],
        labels: Sequence[str],
    ) -> None:
        self.name = name
        self.help = help
        self.label_names = tuple(labels)
        self._fn = fn

    def _current(self) -> list[tuple[tuple[str, ...], float]]:
        try:
            got = self._fn()
        except Exception:
            _log.debug("metric %s: callback failed", self.name, exc_info=True)
            return []
        if not isinstance(got, Mapping):
            return [((), float(got))]
        width = len(self.label_names)
        rows = [(tuple(str(v) for v in k), float(v)) for k, v in got.items()]
        return [row for row in rows if len(row[0]) == width]

    def value(self, **labels: Any) -> float | None:
        key = tuple(str(labels[n]) for n in self.label_names)
        return next((v for k, v in self._current() if k == key), None)

    def collect(self) -> list[Metric]:
        family = GaugeMetricFamily(self.name, self.help, labels=self.label_names)
        for key, value in self._current():
            family.add_metric(list(key), value)
        return [family]


class Histogram(_Metric):
    """Observations counted in cumulative buckets, with their sum and count.

    Kept here and exposed as a ``prometheus_client`` custom collector, so that
    ``observe_many`` counts a request's observations under one lock: the service observes
    one duration per GenAI span, and ``prometheus_client``'s histogram takes two locks per
    observation.
    """

    kind = "histogram"

    def __init__(
        self, name: str, help: str, labels: Sequence[str], buckets: Sequence[float], max_series: int
    ) -> None:
        super().__init__(name, help, labels, max_series)
        bounds = sorted(float(b) for b in buckets if b != float("inf"))
        if not bounds:
            raise ValueError(f"{name}: needs at least one finite bucket bound")
        self.buckets = tuple(bounds)
        self._bounds = [floatToGoString(b) for b in bounds] + ["+Inf"]
        # per series: [count per bucket..., +Inf count, sum]
        self._series: dict[tuple[str, ...], list[float]] = {}

    def _cells(self, key: tuple[str, ...]) -> list[float]:
        """The cells of ``key``'s series (or of the all-``other`` one); hold the lock."""
        cells = self._series.get(key)
        if cells is None:
            if len(self._series) >= self.max_series:
                key = (OTHER,) * len(key)
            cells = self._series.setdefault(key, [0] * (len(self.buckets) + 1) + [0.0])
        return cells

    def observe(self, value: float, **labels: Any) -> None:
        self.observe_many((value,), **labels)

    def observe_many(self, values: Sequence[float], **labels: Any) -> None:
        """``observe`` for each of ``values`` (one series), taking the lock once."""
        if not values:
            return
        key = self._key((), labels)
        buckets = self.buckets
        indexes = [bisect_left(buckets, v) for v in values]
        with self._lock:
            cells = self._cells(key)
            for index in indexes:
                cells[index] += 1
            cells[-1] += sum(values)

    def count(self, **labels: Any) -> int:
        key = self._key((), labels)
        with self._lock:
            cells = self._series.get(key)
            return int(sum(cells[:-1])) if cells else 0

    def collect(self) -> list[Metric]:
        with self._lock:
            items = [(key, list(cells)) for key, cells in self._series.items()]
        family = HistogramMetricFamily(self.name, self.help, labels=self.label_names)
        for key, cells in sorted(items):
            running = 0.0
            buckets = []
            for bound, n in zip(self._bounds, cells, strict=False):
                running += n
                buckets.append((bound, running))
            family.add_metric(list(key), buckets, sum_value=cells[-1])
        return [family]


class CappedValues:
    """At most ``limit`` distinct values of one label: the first ones seen keep their name,
    later new ones are ``other``; the empty value (the attribute is not there) is kept and
    not counted."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: Any) -> str:
        text = "" if value is None else str(value)
        if not text or text in self._seen:
            return text
        with self._lock:
            if text in self._seen or len(self._seen) < self.limit:
                self._seen.add(text)
                return text
        return OTHER


class MetricsRegistry:
    """Named metrics of one service; ``render()`` gives the Prometheus text format.

    Registering a name twice with the same kind and labels returns the existing metric
    (so two parts of the service can share one); anything else is an error.
    """

    def __init__(self) -> None:
        self.registry = prometheus_client.CollectorRegistry()
        self._metrics: dict[str, Any] = {}
        self._caps: dict[str, CappedValues] = {}
        self._lock = threading.Lock()

    def capped_values(self, key: str, limit: int | None = None, default: int = 50) -> CappedValues:
        """The cap on the values of ``key`` (an attribute name) that every metric labelled by
        it shares; ``limit`` sets it (the service's configuration), else the first caller's
        ``default`` makes it."""
        with self._lock:
            cap = self._caps.get(key)
            if cap is None:
                cap = self._caps[key] = CappedValues(default if limit is None else limit)
            elif limit is not None:
                cap.limit = max(1, limit)
            return cap

    def _register(
        self, kind: str, name: str, labels: Sequence[str], make: Callable[[], Any]
    ) -> Any:
        with self._lock:
            existing = self._metrics.get(name)
            if existing is not None:
                if existing.kind == kind and existing.label_names == tuple(labels):
                    return existing
                raise ValueError(
                    f"metric {name!r} is already registered as a {existing.kind} with labels "
                    f"{existing.label_names}"
                )
            metric = self._metrics[name] = make()
            return metric

    def counter(
        self, name: str, help: str, labels: Sequence[str] = (), *, max_series: int = 1000
    ) -> Counter:
        return self._register(
            "counter", name, labels, lambda: Counter(self.registry, name, help, labels, max_series)
        )

    def gauge(
        self, name: str, help: str, labels: Sequence[str] = (), *, max_series: int = 1000
    ) -> Gauge:
        return self._register(
            "gauge", name, labels, lambda: Gauge(self.registry, name, help, labels, max_series)
        )

    def _collected(self, collector: Any) -> Any:
        self.registry.register(collector)
        return collector

    def gauge_callback(
        self,
        name: str,
        help: str,
        fn: Callable[[], Mapping[tuple, float] | float],
        labels: Sequence[str] = (),
    ) -> Any:
        return self._register(
            "gauge", name, labels, lambda: self._collected(_CallbackGauge(name, help, fn, labels))
        )

    def histogram(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        max_series: int = 1000,
    ) -> Histogram:
        return self._register(
            "histogram",
            name,
            labels,
            lambda: self._collected(Histogram(name, help, labels, buckets, max_series)),
        )

    def get(self, name: str) -> Any:
        return self._metrics.get(name)

    def render(self) -> str:
        return prometheus_client.generate_latest(self.registry).decode()


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
