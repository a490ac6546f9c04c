"""OpenAI ``POST /v1/embeddings`` emulation with deterministic unit vectors."""

from __future__ import annotations

import base64
import hashlib
import math
import random
import struct
from typing import Any

from . import content as c
from .reply import Reply, json_reply
from .scenarios import Context, openai_error_body

_DEFAULT_DIMENSIONS = {"text-embedding-3-large": 3072}


def embeddings(body: dict[str, Any], ctx: Context) -> Reply:
    del ctx
    inputs = _inputs(body.get("input"))
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _invalid("you must provide a model parameter", "model")
    if not inputs:
        return _invalid("'input' must be a non-empty string or array", "input")
    dims = body.get("dimensions") or _DEFAULT_DIMENSIONS.get(model, 1536)
    if not isinstance(dims, int) or dims < 1:
        return _invalid("'dimensions' must be a positive integer", "dimensions")
    as_base64 = body.get("encoding_format") == "base64"
    data = [_item(index, vector_for(text, dims), as_base64) for index, text in enumerate(inputs)]
    tokens = sum(c.count_tokens(text) for text in inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return json_reply({"object": "list", "data": data, "model": model, "usage": usage})


def _invalid(message: str, param: str) -> Reply:
    return json_reply(openai_error_body(message, "invalid_request_error", param), 400)


def _inputs(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    if not isinstance(raw, list) or not raw:
        return []
    if all(isinstance(x, int) for x in raw):
        return [" ".join(map(str, raw))]
    return [
        x if isinstance(x, str) else " ".join(map(str, x))
        for x in raw
        if isinstance(x, (str, list))
    ]


def vector_for(text: str, dims: int) -> list[float]:
    """A deterministic unit vector (float32-exact values) for `text`."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    raw = [rng.uniform(-1.0, 1.0) for _ in range(dims)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    packed = struct.pack(f"<{dims}f", *(x / norm for x in raw))
    return list(struct.unpack(f"<{dims}f", packed))


def _item(index: int, vector: list[float], as_base64: bool) -> dict[str, Any]:
    embedding: Any = vector
    if as_base64:
        embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return {"object": "embedding", "index": index, "embedding": embedding}
