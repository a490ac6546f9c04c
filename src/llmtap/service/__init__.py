"""The llmtap service: OTLP in (gRPC and HTTP), the span pipeline, forwarding to every
destination, hooks for the judge side, Prometheus metrics.

This module holds only what loading ``llmtap.yaml`` needs (:class:`ServiceConfig`, the
``service:`` section), so that apps reading the shared config file do not import gRPC
servers. :class:`~llmtap.service.app.ServiceApp` lives in :mod:`llmtap.service.app`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmtap.service.address import parse_address

__all__ = ["ServiceConfig", "TrustedSender", "parse_address", "service_config_of"]


def _optional_address(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    return None if text.lower() in ("", "off", "none", "disabled") else text


@dataclass
class TrustedSender:
    """A sender whose redaction marks are taken as they are (``service.trusted_senders[]``)."""

    name: str
    """who it is (in the service's log)"""
    token: str = field(repr=False)
    """its own bearer token (put it in the environment: ``${env:VAR}``); requests presenting it
    are authenticated even when it differs from auth_token"""


def _trusted_sender(i: int, value: Any) -> TrustedSender:
    if isinstance(value, TrustedSender):
        return value
    if isinstance(value, Mapping) and set(value) <= {"name", "token"}:
        return TrustedSender(name=value.get("name", ""), token=value.get("token", ""))
    raise ValueError(f"trusted_senders[{i}]: expected a mapping with name and token")


@dataclass
class ServiceConfig:
    """The ``service:`` section of ``llmtap.yaml`` (what ``llmtap serve`` runs).

    Addresses are ``host:port`` (``[::1]:4317`` for IPv6; port 0 picks a free port); ``null``
    or ``off`` turns a listener off. Bind ``0.0.0.0`` in a container.

    ``queue_size`` is how many spans may wait per destination (the larger of it and the
    destination's own ``export[].queue_size``), and ``queue_max_bytes`` how many bytes of
    them. With ``queue_dir`` each destination's queue is also written to a write-ahead log
    in ``<queue_dir>/<destination>/`` before the request is acknowledged: what was accepted
    survives a crash or restart of the service and is sent when it starts again (at least
    once: spans delivered just before a crash may be sent again, counted in
    ``llmtap_service_spans_resent_total``); ``queue_fsync`` also syncs each write to disk
    (survives power loss, costs a sync per request). ``memory_limit_mib``: above this
    resident memory the service answers senders with a retryable error (503 /
    UNAVAILABLE with a retry delay) instead of growing; unset, it is 85% of the
    container's (cgroup) memory limit when there is one. ``best_effort`` lists destination names
    (``export[].name``, else ``<preset>#<index>``) that drop what does not fit instead of
    pushing back on senders. ``retry_after_s`` is the delay senders are told to wait when
    a queue is full. ``hook_queue_size`` bounds the spans waiting for ``on_spans`` hooks.
    ``usage_metrics`` counts cost and tokens by model and feature
    (``llmtap_cost_usd_total``, ``llmtap_tokens_total``) from every GenAI span; reading
    them costs about a quarter of the per-span CPU of spans that need no processing, so
    turn it off when the backends or the apps' own metrics give those numbers.
    ``workers`` is the number of gRPC handler threads.
    ``max_prompt_versions`` caps the distinct ``llmtap.prompt.version`` values the metrics
    are labelled by (``prompt_version`` on the usage metrics, ``llmtap_prompt_version`` on
    the judge's verdicts): the first ones seen keep their name in every metric, later new
    versions are counted as ``other``.

    Redaction marks: a span an llmtap app already redacted carries ``llmtap.redaction.count``,
    but any sender can write that attribute, so the mark alone is ignored and the span is
    redacted again. The service forwards a marked span as received (no redaction work) only
    when the mark is earned: the span carries a valid ``llmtap.redaction.seal`` (an HMAC of
    its trace id, span id and count under the key in ``LLMTAP_REDACTION_KEY``, the
    ``redaction.seal_key_env`` variable, set to the same value in the app and the service),
    or the request was authenticated with the token of one of ``trusted_senders``.
    ``trust_upstream: false`` ignores both and redacts every span again. (Before seals,
    ``trust_upstream: true`` took any mark as it was; it now means: earned marks only.)

    ``request_budget_s`` bounds the redaction work on one request: content not scanned when
    it runs out is replaced by ``<OVER_BUDGET>`` and counted in
    ``llmtap.redaction.over_budget`` (as are texts over ``redaction.max_value_chars``), so
    that a huge request is answered in time instead of being retried and forwarded twice.

    The OTLP/HTTP receiver serves each open connection on a thread of its own, at most
    ``http_max_connections`` of them: one more is answered 503 (``Retry-After``) and closed
    (over TLS just closed); OTLP exporters retry both.
    A sender has ``http_header_timeout_s`` for a request's line and headers (and, with TLS,
    the handshake) and ``http_body_timeout_s`` for its body, else the connection is closed;
    a kept-alive connection with no request for ``http_idle_timeout_s`` is closed too.
    OTLP/JSON bodies nested deeper than 200 arrays and objects, and requests whose
    messages nest deeper than protobuf's limit of 100 (``arrayValue`` or ``kvlistValue``
    inside one another), are refused as invalid (HTTP 400, gRPC INVALID_ARGUMENT).

    User feedback recorded by response id in a process that did not see the answer
    (``llmtap.feedback.resolved`` = false) is copied into the answer's trace, under the
    answer's span: the service remembers the span of the last ``feedback_responses``
    response ids it received (about 200 bytes each; 0 turns the resolution off), and
    feedback that arrives before its answer waits up to ``feedback_wait_s`` for it, at most
    ``feedback_pending`` of them (see :mod:`llmtap.service.feedback_resolver`).

    ``evaluation_sinks`` sends the judge's verdicts and users' feedback to backends' own
    evaluation APIs (Phoenix span annotations, Langfuse scores, Datadog LLM Observability
    evaluations), each through a bounded queue of its own (:mod:`llmtap.service.sinks`).
    With a sink every received span is decoded for the hooks (to find the feedback).
    """

    grpc_address: str | None = "127.0.0.1:4317"
    """OTLP/gRPC listener, host:port (null or off: none)"""
    http_address: str | None = "127.0.0.1:4318"
    """OTLP/HTTP listener, host:port (null or off: none)"""
    metrics_address: str | None = "127.0.0.1:9464"
    """Prometheus /metrics listener, host:port (null or off: none)"""
    auth_token: str | None = None
    """bearer token senders must present (unset: no authentication)"""
    tls_cert_file: str | None = None
    """TLS certificate for the listeners (with tls_key_file)"""
    tls_key_file: str | None = None
    """TLS private key for the listeners (with tls_cert_file)"""
    max_message_bytes: int = 16 * 1024 * 1024
    """largest OTLP request accepted"""
    queue_size: int = 16384
    """spans waiting per destination at most"""
    queue_max_bytes: int = 128 * 1024 * 1024
    """bytes of spans waiting per destination at most"""
    queue_dir: str | None = None
    """directory for durable queues, one per destination (unset: queues in memory only)"""
    queue_fsync: bool = False
    """sync every queue write to disk (survives power loss; unset: survives process crashes)"""
    memory_limit_mib: int | None = None
    """refuse data (retryable) while the process uses more (unset: 85% of its cgroup limit)"""
    shutdown_timeout_s: float = 10.0
    """time given to flush queues at shutdown"""
    retry_after_s: float = 1.0
    """the wait senders are told when a queue is full"""
    best_effort: list[str] = field(default_factory=list)
    """destinations that drop what does not fit instead of pushing back"""
    hook_queue_size: int = 16384
    """spans waiting for on_spans hooks at most"""
    workers: int = 8
    """gRPC handler threads"""
    http_max_connections: int = 256
    """open OTLP/HTTP connections at most (a thread each); more are answered 503"""
    http_header_timeout_s: float = 10.0
    """time an OTLP/HTTP sender has for a request's line and headers (and TLS handshake)"""
    http_body_timeout_s: float = 60.0
    """time an OTLP/HTTP sender has for a request's body"""
    http_idle_timeout_s: float = 60.0
    """an OTLP/HTTP connection without a request (or a byte) this long is closed"""
    usage_metrics: bool = True
    """count cost and tokens by model and feature"""
    max_prompt_versions: int = 50
    """distinct llmtap.prompt.version values labelled in the metrics; later new ones are other"""
    trust_upstream: bool = True
    """take the redaction marks of received spans when they are earned (a valid seal, a trusted
    sender's token); false: redact every span again"""
    trusted_senders: list[TrustedSender] = field(default_factory=list)
    """senders (name and token) whose redaction marks are taken as they are (below)"""
    request_budget_s: float = 5.0
    """seconds of redaction per request; what is not scanned by then is replaced by
    ``<OVER_BUDGET>`` (0: no limit)"""
    feedback_responses: int = 100_000
    """response ids remembered to move other processes' feedback into the answer's trace (0: off)"""
    feedback_pending: int = 1000
    """feedback spans waiting for their answer at most"""
    feedback_wait_s: float = 60.0
    """time feedback waits for its answer's span to arrive"""
    evaluation_sinks: list[dict[str, Any]] = field(default_factory=list)
    """backends the verdicts and user feedback are also sent to as their own evaluations, each
    ``{sink: phoenix | langfuse | datadog_llmobs, ...}`` (see "Evaluation sinks")"""

    def __post_init__(self) -> None:
        errors: list[str] = []
        for name in ("grpc_address", "http_address", "metrics_address"):
            value = _optional_address(getattr(self, name))
            setattr(self, name, value)
            if value is not None:
                try:
                    parse_address(value, name)
                except ValueError as exc:
                    errors.append(str(exc))
        if self.grpc_address is None and self.http_address is None:
            errors.append("grpc_address: both receivers are off; set grpc_address or http_address")
        if self.auth_token is not None and not self.auth_token.strip():
            errors.append("auth_token: is empty (leave it out to turn authentication off)")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            missing = "tls_key_file" if self.tls_key_file is None else "tls_cert_file"
            errors.append(f"{missing}: TLS needs both tls_cert_file and tls_key_file")
        for name, low in (
            ("max_message_bytes", 1024),
            ("queue_size", 1),
            ("queue_max_bytes", 1024),
            ("hook_queue_size", 1),
            ("workers", 1),
            ("max_prompt_versions", 1),
            ("http_max_connections", 1),
            ("feedback_responses", 0),
            ("feedback_pending", 0),
        ):
            if getattr(self, name) < low:
                errors.append(
                    f"{name}: expected an integer of at least {low}, got {getattr(self, name)!r}"
                )
        if self.feedback_wait_s < 0:
            errors.append(f"feedback_wait_s: expected 0 or more, got {self.feedback_wait_s!r}")
        if self.shutdown_timeout_s < 0:
            errors.append(
                f"shutdown_timeout_s: expected 0 or more, got {self.shutdown_timeout_s!r}"
            )
        if self.memory_limit_mib is not None and self.memory_limit_mib < 16:
            errors.append(
                f"memory_limit_mib: expected at least 16 (MiB), got {self.memory_limit_mib!r}"
            )
        if self.queue_dir is not None and not str(self.queue_dir).strip():
            errors.append("queue_dir: is empty (leave it out to keep queues in memory only)")
        for name in (
            "retry_after_s",
            "http_header_timeout_s",
            "http_body_timeout_s",
            "http_idle_timeout_s",
        ):
            if getattr(self, name) <= 0:
                errors.append(f"{name}: expected a positive number, got {getattr(self, name)!r}")
        if not isinstance(self.trust_upstream, bool):
            errors.append(
                f"trust_upstream: expected true or false, got {self.trust_upstream!r} "
                "(true: take earned redaction marks, sealed or from trusted_senders)"
            )
        if not 0 <= self.request_budget_s < float("inf"):
            errors.append(
                f"request_budget_s: expected 0 or a positive number, got {self.request_budget_s!r}"
            )
        errors += self._check_senders()
        if self.evaluation_sinks:
            from llmtap.service.sinks.config import sink_problems

            errors += sink_problems(self.evaluation_sinks)
        if errors:
            raise ValueError("\n".join(errors))

    def _check_senders(self) -> list[str]:
        if not isinstance(self.trusted_senders, list):
            return ["trusted_senders: expected a list of {name, token} entries"]
        errors: list[str] = []
        senders: list[TrustedSender] = []
        for i, value in enumerate(self.trusted_senders):
            try:
                senders.append(_trusted_sender(i, value))
            except ValueError as exc:
                errors.append(str(exc))
        self.trusted_senders = senders
        names: set[str] = set()
        tokens: set[str] = {self.auth_token} if self.auth_token else set()
        for i, sender in enumerate(senders):
            where = f"trusted_senders[{i}]"
            if not isinstance(sender.name, str) or not sender.name.strip():
                errors.append(f"{where}.name: expected a name")
            elif sender.name in names:
                errors.append(f"{where}.name: {sender.name!r} is listed twice")
            names.add(str(sender.name))
            if not isinstance(sender.token, str) or not sender.token.strip():
                errors.append(f"{where}.token: is empty")
            elif len(sender.token.strip()) < 16:
                errors.append(f"{where}.token: use at least 16 characters")
            elif sender.token.strip() in tokens:
                errors.append(f"{where}.token: the same as auth_token or another sender's token")
            else:
                tokens.add(sender.token.strip())
        return errors

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    def sender_tokens(self) -> dict[bytes, str]:
        """The trusted senders' tokens (bytes) and names."""
        return {s.token.strip().encode(): s.name for s in self.trusted_senders}


def service_config_of(cfg: Any) -> ServiceConfig:
    """The ``service`` section of a loaded ``LlmtapConfig`` (defaults when it has none)."""
    section = getattr(cfg, "service", None)
    if isinstance(section, ServiceConfig):
        return section
    if section is None:
        return ServiceConfig()
    if isinstance(section, Mapping):  # registered as a raw mapping: build it here
        return cfg.section("service", ServiceConfig)
    raise TypeError(f"service: expected a ServiceConfig, got {type(section).__name__}")
