"""Evaluators (LLM judge and rule checks), shared by the service and offline golden-set runs.

* :mod:`llmtap.evals.base`: ``EvalInput``, ``Verdict``, the ``Evaluator`` protocol;
* :mod:`llmtap.evals.registry`: ``build_evaluator(spec, judge)`` from config entries,
  ``extract_input(span, trace)``;
* :mod:`llmtap.evals.llm_judge` and :mod:`llmtap.evals.rubrics`: the LLM judge and its
  rubrics; :mod:`llmtap.evals.judge_client`: the HTTP client it calls the model through
  (timeouts, retries, circuit breaker);
* :mod:`llmtap.evals.rules`: evaluators that need no model, and
  :mod:`llmtap.evals.consistency`: the model-free ``fact_consistency`` check (names,
  numbers, dates, negation and antonym flips against the retrieved documents).

Importing this package imports no HTTP client; ``httpx2`` is needed only when a judge
calls its model.
"""
