"""What counts as a secret key name: one home for redaction and for the config reader.

:func:`is_secret_name` says whether values under a name (a JSON key, a variable, a header,
a key of ``llmtap.yaml``) are credentials: ``password``, ``db_password``, ``apiKey``,
``x-api-key``, ``AWS_SECRET_ACCESS_KEY``, ``SecretAccessKey``, ... (:data:`SECRET_KEY_NAME`).

The redaction stage (:mod:`llmtap.pipeline.detectors`) redacts credential-looking values
under such names; there a wrong guess destroys content, so it uses the pattern alone. The
config reader never prints values under them and warns when the file holds one literally;
there hiding costs nothing, so it asks with ``cautious=True``, which also counts broad
words (``key``, ``auth``, ``team`` as in ``x-honeycomb-team``, ``pwd``, ...) but not names
that hold a price, a limit or the place of a secret (``input_cost_per_token``,
``max_tokens_per_key``, ``api_key_env``, ``tls_key_file``). A leaf module: it imports
nothing of llmtap's.
"""

from __future__ import annotations

import functools
import re
from typing import Final

__all__ = ["SECRET_KEY_NAME", "is_secret_name"]

#: names whose values are credentials, found as a part of a longer name:
#: password, db_password, apiKey, x-api-key, AWS_SECRET_ACCESS_KEY, SecretAccessKey, ...
SECRET_KEY_NAME: Final = re.compile(
    r"(?:^|[_\-.\s]|(?<=[a-z])(?=[A-Z]))"
    r"(?i:pass(?:word|wd|phrase)?|secret|sig|signature|"
    r"(?:api|access|private|secret|account|subscription|client|master|signing|app)[_\-]?key|"
    r"(?:access|auth|refresh|id|bearer|api|session|security)?[_\-]?token|credentials?)"
    r"(?:$|[_\-.\s]|(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z]))"
)

# cautious only: whole words of a name (lower-cased, split at anything not a letter or
# digit) that make it a secret name on their own
_SECRET_WORDS: Final = frozenset(
    {
        "key",
        "apikey",
        "token",
        "secret",
        "password",
        "passwd",
        "pwd",
        "auth",
        "authorization",
        "credential",
        "credentials",
        "bearer",
        "team",  # x-honeycomb-team carries the API key
    }
)
_SECRET_ENDINGS: Final = ("apikey", "secretkey", "accesskey", "token", "password")
# `input_cost_per_token`, `max_tokens_per_key`...: prices and limits, not secrets;
# `api_key_env`, `tls_key_file`: where a secret is, not the secret
_NOT_SECRET_WORDS: Final = frozenset(
    {"cost", "per", "count", "limit", "max", "min", "env", "file", "path"}
)
_WORD: Final = re.compile(r"[a-z0-9]+")


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str, *, cautious: bool = False) -> bool:
    """Whether values under ``name`` are credentials (see the module docstring)."""
    if not cautious:
        return SECRET_KEY_NAME.search(name) is not None
    words = set(_WORD.findall(name.lower()))
    if words & _NOT_SECRET_WORDS:
        return False
    return (
        bool(words & _SECRET_WORDS)
        or any(w.endswith(_SECRET_ENDINGS) for w in words)
        or SECRET_KEY_NAME.search(name) is not None
    )
