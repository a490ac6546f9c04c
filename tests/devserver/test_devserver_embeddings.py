from __future__ import annotations

import base64
import math
import struct

import pytest

from .conftest import Backend

MODEL = "text-embedding-3-small"


def test_float_embeddings_single_and_list(backend: Backend) -> None:
    client = backend.openai()
    single = client.embeddings.create(model=MODEL, input="hello world", encoding_format="float")
    assert single.model == MODEL and len(single.data) == 1
    vector = single.data[0].embedding
    assert len(vector) == 1536
    assert math.isclose(math.fsum(x * x for x in vector), 1.0, rel_tol=1e-5)
    batch = client.embeddings.create(
        model=MODEL, input=["hello world", "other"], encoding_format="float"
    )
    assert [item.index for item in batch.data] == [0, 1]
    assert batch.data[0].embedding == vector
    assert batch.data[1].embedding != vector
    assert batch.usage.prompt_tokens == batch.usage.total_tokens == 3


def test_base64_and_default_encoding(backend: Backend) -> None:
    client = backend.openai()
    floats = client.embeddings.create(
        model=MODEL, input="abc", encoding_format="float", dimensions=8
    )
    explicit = client.embeddings.create(
        model=MODEL, input="abc", encoding_format="base64", dimensions=8
    )
    encoded = explicit.data[0].embedding
    assert isinstance(encoded, str)
    assert list(struct.unpack("<8f", base64.b64decode(encoded))) == floats.data[0].embedding
    decoded_by_sdk = client.embeddings.create(model=MODEL, input="abc", dimensions=8)
    assert decoded_by_sdk.data[0].embedding == pytest.approx(floats.data[0].embedding)


def test_dimensions_and_large_model(backend: Backend) -> None:
    client = backend.openai()
    assert (
        len(client.embeddings.create(model=MODEL, input="x", dimensions=64).data[0].embedding) == 64
    )
    large = client.embeddings.create(
        model="text-embedding-3-large", input="x", encoding_format="float"
    )
    assert len(large.data[0].embedding) == 3072
