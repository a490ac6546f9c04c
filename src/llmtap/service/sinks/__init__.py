"""Evaluation sinks: the service's verdicts, and users' feedback, as a backend's own evaluations.

The judge writes every verdict back into the trace (``evaluate {name}`` child spans and
``gen_ai.evaluation.result`` events, :mod:`llmtap.service.results`), and user feedback arrives
as such spans too (``llmtap.evaluation.source`` = ``user``). Backends show those as spans. An
evaluation sink also sends each verdict to a backend's evaluation API, where it is shown
next to the evaluated span as that backend's own evaluation:

* ``phoenix``: Arize Phoenix span annotations (``POST /v1/span_annotations``);
* ``langfuse``: Langfuse scores (``POST /api/public/scores``);
* ``datadog_llmobs``: Datadog LLM Observability evaluations
  (``POST https://api.<site>/api/intake/llm-obs/v2/eval-metric``).

Configuration: a list under the service's section, each entry a sink by name (a
:class:`~llmtap.configuration.factories.Registry`, :data:`llmtap.service.sinks.config.SINKS`)::

    service:
      evaluation_sinks:
        - {sink: phoenix, endpoint: "http://phoenix:6006"}
        - {sink: langfuse, public_key: "${env:LF_PK}", secret_key: "${env:LF_SK}"}

Why a ``service.evaluation_sinks`` list rather than an ``evaluations:`` option on an
``export:`` destination: ``export:`` is read by the app and by the service alike and is
OTLP (one protocol, one set of keys per backend), while a sink is fed only in the service
(by the judge and the feedback resolver), speaks a backend's REST API with credentials and
failure modes of its own, and has its own queue; an evaluation can go to a backend the
spans do not go to (spans to a collector, evaluations to Langfuse) or the other way round.
Keeping sinks out of ``export:`` keeps that schema what the app knows.

Each sink has its own bounded queue and worker (:mod:`llmtap.service.sinks.runner`, on
:class:`llmtap.export.queue.DestinationQueue`), so the judge hands over a verdict and goes
on; what does not fit, what the backend refuses and what is still queued at shutdown are
counted in ``llmtap_service_evaluations_dropped_total`` and logged.
"""
