"""Pinecone's data-plane REST API on the devserver, read by the real ``pinecone`` SDK's HTTP
``Index`` (socket server only: the SDK builds its own httpx client)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pinecone
import pytest
from pinecone import Pinecone

from llmtap.devserver import DevServer
from llmtap.devserver.router import protocol_for

VECTORS = [
    {"id": "a", "values": [1.0, 0.0, 0.0], "metadata": {"text": "alpha", "lang": "en"}},
    {"id": "b", "values": [0.0, 1.0, 0.0], "metadata": {"text": "beta", "lang": "fr"}},
    {"id": "c", "values": [0.7, 0.7, 0.0]},
]


@pytest.fixture
def namespace() -> str:
    return f"ns-{uuid.uuid4().hex[:8]}"


# 10.x names its errors *Error (status_code, body a dict); 7.x - 9.x *Exception (status)
NOT_FOUND = getattr(pinecone, "NotFoundError", None) or pinecone.NotFoundException
UNAUTHORIZED = getattr(pinecone, "UnauthorizedError", None) or pinecone.UnauthorizedException
API_ERROR = getattr(pinecone, "ApiError", None) or pinecone.PineconeApiException


def _status(error: Any) -> Any:
    return getattr(error, "status_code", None) or error.status


def _body(error: Any) -> dict[str, Any]:
    body = error.body
    return json.loads(body) if isinstance(body, str | bytes) else body


def _index(devserver: DevServer, scenario: str | None = None) -> Any:
    if scenario is None:
        return Pinecone(api_key="x").Index(host=devserver.base_url)
    headers = {"x-devserver-scenario": scenario}
    try:  # 7.x - 9.x: headers of the index
        return Pinecone(api_key="x").Index(host=devserver.base_url, additional_headers=headers)
    except TypeError:  # 10.x: headers of the client
        return Pinecone(api_key="x", additional_headers=headers).Index(host=devserver.base_url)


def test_paths_belong_to_the_pinecone_protocol() -> None:
    for path in ("/query", "/vectors/upsert", "/describe_index_stats", "/vectors/delete"):
        assert protocol_for(path).name == "pinecone"
    assert protocol_for("/chat/completions").name == "openai"


def test_upsert_query_cosine_scores_and_metadata(devserver: DevServer, namespace: str) -> None:
    index = _index(devserver)
    assert index.upsert(vectors=VECTORS, namespace=namespace).upserted_count == 3
    result = index.query(
        top_k=2, vector=[1.0, 0.1, 0.0], namespace=namespace, include_metadata=True
    )
    assert result.namespace == namespace
    assert [m.id for m in result.matches] == ["a", "c"]
    assert result.matches[0].score == pytest.approx(1 / (1.01**0.5), abs=1e-5)
    assert result.matches[1].score == pytest.approx(0.77 / (1.01**0.5 * 0.98**0.5), abs=1e-5)
    assert result.matches[0].metadata == {"text": "alpha", "lang": "en"}
    assert not result.matches[1].metadata
    assert result.usage.read_units == 5
    info = getattr(result, "response_info", None)  # 10.x
    if info is not None:
        assert info.raw_headers["x-pinecone-request-id"].startswith("req_")


def test_query_by_id_values_and_filter(devserver: DevServer, namespace: str) -> None:
    index = _index(devserver)
    index.upsert(vectors=VECTORS, namespace=namespace)
    by_id = index.query(top_k=1, id="b", namespace=namespace, include_values=True)
    assert by_id.matches[0].id == "b" and by_id.matches[0].values == [0.0, 1.0, 0.0]
    filtered = index.query(
        top_k=3, vector=[1.0, 0.0, 0.0], namespace=namespace, filter={"lang": {"$eq": "fr"}}
    )
    assert [m.id for m in filtered.matches] == ["b"]
    assert index.query(top_k=3, vector=[1.0, 0.0, 0.0], namespace="empty-ns").matches == []


def test_describe_index_stats_and_delete(devserver: DevServer, namespace: str) -> None:
    index = _index(devserver)
    index.upsert(vectors=VECTORS, namespace=namespace)
    stats = index.describe_index_stats()
    assert stats.namespaces[namespace].vector_count == 3
    assert stats.dimension == 3
    index.delete(ids=["a"], namespace=namespace)
    assert index.describe_index_stats().namespaces[namespace].vector_count == 2


@pytest.mark.parametrize(
    ("scenario", "error", "status"),
    [
        ("not_found", NOT_FOUND, 404),
        ("auth", UNAUTHORIZED, 401),
        ("bad_request", API_ERROR, 400),
        ("permission", API_ERROR, 403),
    ],
)
def test_scenario_errors(devserver: DevServer, scenario: str, error: type, status: int) -> None:
    with pytest.raises(error) as raised:
        _index(devserver, scenario).query(top_k=1, vector=[1.0, 0.0, 0.0])
    assert _status(raised.value) == status
    assert _body(raised.value)["code"] in (3, 5, 7, 16)


def test_invalid_query_is_a_400(devserver: DevServer) -> None:
    with pytest.raises(API_ERROR) as raised:
        _index(devserver).query(top_k=1, id="nowhere", namespace="never-used")
    assert _status(raised.value) == 400


def test_async_index(devserver: DevServer, namespace: str) -> None:
    async def run() -> Any:
        if hasattr(pinecone, "AsyncIndex"):  # 10.x
            made = pinecone.AsyncIndex(host=devserver.base_url, api_key="x")
        else:
            made = Pinecone(api_key="x").IndexAsyncio(host=devserver.base_url)
        async with made as index:
            await index.upsert(vectors=VECTORS, namespace=namespace)
            return await index.query(top_k=1, vector=[0.0, 1.0, 0.0], namespace=namespace)

    assert [m.id for m in asyncio.run(run()).matches] == ["b"]
