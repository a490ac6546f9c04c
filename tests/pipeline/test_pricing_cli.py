"""``llmtap pricing``: show, check, update (from a file and from a URL on loopback), unpriced."""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import subprocess
import sys
import threading

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from llmtap import cli_pricing, semconv
from llmtap.export.file import JsonLinesSpanExporter
from llmtap.pipeline import cost
from llmtap.pipeline.cost import COST_TOTAL, COST_UNKNOWN_MODEL, PricingConfig

LITELLM_SAMPLE = {
    "sample_spec": {
        "input_cost_per_token": 0.0,
        "litellm_provider": "one of https://docs.litellm.ai/docs/providers",
        "max_tokens": "LEGACY parameter. set to max_output_tokens if provider specifies it.",
        "mode": "one of: chat, embedding, completion, image_generation, ...",
        "search_context_cost_per_query": {"search_context_size_high": 0.0},
    },
    "acme-chat-1": {
        "input_cost_per_token": 1e-06,
        "input_cost_per_token_above_128k_tokens": 2e-06,
        "output_cost_per_token": 4e-06,
        "cache_read_input_token_cost": 1e-07,
        "litellm_provider": "acme",
        "max_input_tokens": 256000,
        "mode": "chat",
        "source": "https://acme.example/pricing",
        "supports_function_calling": True,
        "search_context_cost_per_query": {"search_context_size_low": 0.01},
    },
    "acme-embed-1": {
        "input_cost_per_token": 2e-08,
        "litellm_provider": "acme",
        "mode": "embedding",
    },
    "acme-image-1": {
        "litellm_provider": "acme",
        "mode": "image_generation",
        "output_cost_per_image": 0.04,
    },
    "acme-bad-1": {"input_cost_per_token": -1e-06, "output_cost_per_token": 1e-06, "mode": "chat"},
}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMTAP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LLMTAP_PRICING_FILE", raising=False)
    monkeypatch.delenv("LLMTAP_CONFIG", raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli_pricing.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_json(path, data) -> str:
    path.write_text(json.dumps(data))
    return str(path)


# show -----------------------------------------------------------------------------------------


def test_show_summarises_the_tables(capsys):
    code, out, _ = run(capsys, "show")
    assert code == 0
    assert "models priced" in out
    assert "from litellm model_prices_and_context_window.json@" in out
    assert "prices as of 2026-11-22" in out
    assert "bedrock_converse" in out and "azure" in out


def test_show_a_model_says_which_price_and_where_from(capsys):
    code, out, _ = run(capsys, "show", "claude-sonnet-4-5-20250929", "--provider", "aws.bedrock")
    assert code == 0
    assert "price entry   anthropic.claude-sonnet-4-5-20250929-v1:0 (normalised)" in out
    assert "price source  bundled:2026-11-22" in out
    assert "as of         2026-11-22" in out
    assert "input_cost_per_token " in out and "$3\n" in out
    assert "input_cost_per_token_above_200k_tokens" in out and "$6\n" in out


def test_show_a_reranker_gives_its_price_per_search(capsys):
    code, out, _ = run(capsys, "show", "rerank-v3.5", "--provider", "cohere")
    assert code == 0
    assert "mode rerank" in out
    assert "USD per search" in out and "input_cost_per_query" in out and "$0.002\n" in out


def test_show_json(capsys):
    code, out, _ = run(capsys, "show", "gpt-4o-2026-01-15", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["price_model"] == "gpt-4o"
    assert shown["match"] == "normalised"
    assert shown["price"]["input_cost_per_token"] == 2.5e-06


def test_show_an_unknown_model(capsys):
    code, out, _ = run(capsys, "show", "acme-llm-9")
    assert code == 1
    assert "No price for 'acme-llm-9'" in out
    assert "pricing.overrides" in out


def test_show_uses_a_given_table_and_the_config_file(capsys, tmp_path):
    prices = write_json(tmp_path / "p.json", LITELLM_SAMPLE)
    code, out, _ = run(capsys, "show", "acme-chat-1", "--prices", prices)
    assert code == 0 and "price source  file:p.json" in out
    config = tmp_path / "llmtap.yaml"
    config.write_text("pricing:\n  overrides:\n    acme-chat-1: {input_cost_per_token: 5e-6}\n")
    code, out, _ = run(capsys, "show", "acme-chat-1", "--prices", prices, "--config", str(config))
    assert code == 0 and "price source  override" in out and "$5\n" in out


def test_show_reports_a_bad_config_file(capsys, tmp_path):
    config = tmp_path / "llmtap.yaml"
    config.write_text("pricing:\n  overrides:\n    m: {input_cost_per_token: free}\n")
    code, _, err = run(capsys, "show", "--config", str(config))
    assert code == 2
    assert "llmtap.yaml:3" in err and "overrides.m.input_cost_per_token" in err


def test_handle_takes_the_config_from_the_caller(capsys):
    args = argparse.Namespace(pricing_command="show", model="m", provider=None, json=True)
    config = PricingConfig(overrides={"m": {"input_cost_per_token": 1e-6}})
    assert cli_pricing.handle(args, config=config) == 0
    assert json.loads(capsys.readouterr().out)["price_source"] == "override"


def test_add_parser_plugs_into_the_llmtap_command(capsys):
    parser = argparse.ArgumentParser(prog="llmtap")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_pricing.add_parser(sub)
    args = parser.parse_args(["pricing", "show", "gpt-4o", "--json"])
    assert args.handler(args) == 0
    assert json.loads(capsys.readouterr().out)["price_model"] == "gpt-4o"


def test_runs_as_a_module():
    done = subprocess.run(
        [sys.executable, "-m", "llmtap.cli_pricing", "show", "o4-mini", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["price"]["output_cost_per_token"] == 4.4e-06


# check ----------------------------------------------------------------------------------------


def test_check_accepts_a_litellm_file(capsys, tmp_path):
    good = {k: v for k, v in LITELLM_SAMPLE.items() if k != "acme-bad-1"}
    path = write_json(tmp_path / "litellm.json", good)
    code, out, _ = run(capsys, "check", path)
    assert code == 0
    assert f"{path}: 3 entries, 2 priced per token; 0 errors, 0 warnings" in out


def test_check_reports_every_bad_field_with_file_and_key(capsys, tmp_path):
    path = write_json(
        tmp_path / "bad.json",
        {
            **LITELLM_SAMPLE,
            "acme-text": {"input_cost_per_token": "0.000001", "output_cost_per_token": 1e-6},
            "acme-flag": {"input_cost_per_token": True, "mode": "chat"},
            "acme-nothing": {"mode": "chat", "output_cost_per_token": 1e-6},
            "acme-no-output": {"mode": "chat", "input_cost_per_token": 1e-6},
            "acme-search": {
                "mode": "chat",
                "input_cost_per_token": 1e-6,
                "output_cost_per_token": 1e-6,
                "search_context_cost_per_query": {"search_context_size_low": -0.5},
            },
            "acme-list": ["not", "an", "object"],
        },
    )
    code, out, _ = run(capsys, "check", path)
    assert code == 1
    assert f"{path}: acme-bad-1: input_cost_per_token: error: expected a price of 0 or more" in out
    assert (
        f'{path}: acme-text: input_cost_per_token: error: expected a number, got "0.000001"' in out
    )
    assert f"{path}: acme-flag: input_cost_per_token: error: expected a number, got true" in out
    assert f"{path}: acme-nothing: input_cost_per_token: warning: missing" in out
    assert f"{path}: acme-no-output: output_cost_per_token: warning: missing" in out
    assert (
        f"{path}: acme-search: search_context_cost_per_query.search_context_size_low: error"
    ) in out
    assert f"{path}: acme-list: error: expected an object of prices, got a list" in out
    assert "sample_spec" not in out
    assert "5 errors, 3 warnings" in out


_TRAILING_COMMA = '{"m": {"input_cost_per_token": 1e-6,}}'


def _json_error_at(text: str) -> str:
    """Where this Python's json reports the error (3.13 points at the comma, not past it)."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"{exc.lineno}:{exc.colno}"
    raise AssertionError("valid JSON")


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        (_TRAILING_COMMA, 2, f"bad.json:{_json_error_at(_TRAILING_COMMA)}: not valid JSON"),
        ("[1, 2]", 1, "expected a JSON object mapping model names to prices, got a list"),
        (b"\xff\xfe{}", 2, "not UTF-8 text"),
    ],
)
def test_check_a_file_that_is_not_a_table(capsys, tmp_path, content, code, message):
    path = tmp_path / "bad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    got, out, err = run(capsys, "check", str(path))
    assert got == code
    assert message in out + err


def test_check_a_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "check", str(tmp_path / "nope.json"))
    assert code == 2
    assert "nope.json: no such file" in err


def test_the_bundled_table_passes_its_own_check(capsys):
    from importlib import resources

    path = resources.files("llmtap.pipeline.pricing").joinpath("prices.json")
    code, out, _ = run(capsys, "check", str(path))
    assert code == 0 and "0 errors, 0 warnings" in out


# update ---------------------------------------------------------------------------------------


def test_update_from_a_file_writes_the_default_table_that_is_then_used(capsys, tmp_path):
    source = write_json(tmp_path / "litellm.json", LITELLM_SAMPLE)
    code, out, err = run(capsys, "update", "--from", source)
    assert code == 0
    target = tmp_path / "data" / "prices.json"
    assert f"wrote 2 model prices to {target}" in out
    assert "llmtap uses it from now on" in out
    assert "skipped: " in err and "acme-bad-1" in err
    table = json.loads(target.read_text())
    assert set(table) == {"acme-chat-1", "acme-embed-1"}
    chat = table["acme-chat-1"]
    assert chat["input_cost_per_token_above_128k_tokens"] == 2e-06
    assert chat["doc_url"] == "https://acme.example/pricing"
    assert chat["source"].startswith(f"{source} sha256:")
    assert (
        chat["as_of"]
        == cli_pricing._dt.datetime.now(cli_pricing._dt.timezone.utc).date().isoformat()
    )
    assert "supports_function_calling" not in chat and "search_context_cost_per_query" not in chat
    # the app now prices from it: 150k prompt above the 128k tier at 2e-6, output 4e-6
    span_attrs = {
        semconv.REQUEST_MODEL: "acme-chat-1",
        semconv.USAGE_INPUT_TOKENS: 150_000,
        semconv.USAGE_OUTPUT_TOKENS: 100,
    }
    from llmtap.pipeline.span import SpanData

    span = SpanData("chat", span_attrs)
    cost.CostStage().apply(span)
    assert span.attributes[COST_TOTAL] == pytest.approx(0.3004, abs=1e-12)
    assert span.attributes[cost.COST_PRICE_SOURCE] == "file:prices.json"
    # and a table llmtap wrote can be installed again, keeping its source and date
    again = tmp_path / "again.json"
    assert run(capsys, "update", "--from", str(target), "--out", str(again))[0] == 0
    assert json.loads(again.read_text())["acme-chat-1"]["source"] == chat["source"]


@pytest.fixture
def http_root(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))

    class Quiet(handler.func):  # type: ignore[misc]
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_update_from_a_url(capsys, tmp_path, http_root):
    root, base = http_root
    write_json(root / "model_prices_and_context_window.json", LITELLM_SAMPLE)
    out_path = tmp_path / "prices.json"
    url = f"{base}/model_prices_and_context_window.json"
    code, out, _ = run(capsys, "update", "--from", url, "--out", str(out_path))
    assert code == 0
    assert f"use it with LLMTAP_PRICING_FILE={out_path}" in out
    table = json.loads(out_path.read_text())
    assert table["acme-embed-1"]["source"].startswith(f"{url} sha256:")


def test_update_reports_a_url_that_fails(capsys, tmp_path, http_root):
    _, base = http_root
    code, _, err = run(
        capsys, "update", "--from", f"{base}/missing.json", "--out", str(tmp_path / "p.json")
    )
    assert code == 2
    assert "missing.json: the server answered HTTP 404" in err
    assert not (tmp_path / "p.json").exists()


def test_update_refuses_a_file_without_prices(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run(capsys, "update", "--from", str(bad))
    assert code == 2 and "bad.json:1:2: not valid JSON" in err
    empty = write_json(
        tmp_path / "empty.json", {"sample_spec": {}, "img": {"mode": "image_generation"}}
    )
    code, _, err = run(capsys, "update", "--from", empty)
    assert code == 1 and "no entries with usable token prices; nothing written" in err
    assert not (tmp_path / "data" / "prices.json").exists()


def test_update_refuses_a_directory_as_output(capsys, tmp_path):
    source = write_json(tmp_path / "litellm.json", LITELLM_SAMPLE)
    code, _, err = run(capsys, "update", "--from", source, "--out", str(tmp_path))
    assert code == 2 and "is a directory" in err


# unpriced -------------------------------------------------------------------------------------


def write_spans(path, spans: list[dict]) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    tracer = provider.get_tracer("tests")
    for attributes in spans:
        tracer.start_span("chat", attributes=attributes).end()
    provider.shutdown()


def usage(model: str, provider: str = "openai", **extra) -> dict:
    return {
        semconv.PROVIDER: provider,
        semconv.REQUEST_MODEL: model,
        semconv.USAGE_INPUT_TOKENS: 10,
        semconv.USAGE_OUTPUT_TOKENS: 5,
        **extra,
    }


def test_unpriced_lists_models_without_a_price_in_a_span_file(capsys, tmp_path):
    path = tmp_path / "spans.jsonl"
    write_spans(
        path,
        [
            usage("gpt-4o", **{COST_TOTAL: 0.0001}),
            usage("acme-old", "acme", **{semconv.USAGE_COST: 0.0001}),  # an older app's name
            usage("acme-llm-9", "acme", **{COST_UNKNOWN_MODEL: True}),
            usage("acme-llm-9", "acme", **{COST_UNKNOWN_MODEL: True}),
            usage("my-model"),
            usage("gpt-4o-mini"),  # not costed when recorded, but it has a price
            {"llmtap.step.kind": "retrieval"},
        ],
    )
    code, out, _ = run(capsys, "unpriced", "--spans", str(path))
    assert code == 0
    assert f"2 models without a price in {path} (6 GenAI spans):" in out
    lines = out.splitlines()
    assert lines[2].split() == ["2", "acme", "acme-llm-9"]
    assert lines[3].split() == ["1", "openai", "my-model"]

    prices = write_json(tmp_path / "p.json", {"acme-llm-9": {"input_cost_per_token": 1e-6}})
    code, out, _ = run(capsys, "unpriced", "--spans", str(path), "--prices", prices, "--json")
    report = json.loads(out)
    assert report["unpriced"] == [{"provider": "openai", "model": "my-model", "spans": 1}]
    assert report["now_priced"] == 2 and report["genai_spans"] == 6


def test_unpriced_counts_rerank_spans_billed_in_search_units(capsys, tmp_path):
    path = tmp_path / "spans.jsonl"
    units = {semconv.LLMTAP_USAGE_SEARCH_UNITS: 1}
    rerank = {semconv.OPERATION: "rerank", semconv.PROVIDER: "cohere", **units}
    write_spans(
        path,
        [
            {**rerank, semconv.REQUEST_MODEL: "rerank-v3.5"},
            {**rerank, semconv.REQUEST_MODEL: "acme-rerank-1", COST_UNKNOWN_MODEL: True},
        ],
    )
    code, out, _ = run(capsys, "unpriced", "--spans", str(path))
    assert code == 0
    assert f"1 models without a price in {path} (2 GenAI spans):" in out
    assert out.splitlines()[2].split() == ["1", "cohere", "acme-rerank-1"]


def test_unpriced_reports_bad_lines_and_goes_on(capsys, tmp_path):
    path = tmp_path / "spans.jsonl"
    write_spans(path, [usage("my-model")])
    with open(path, "a") as fh:
        fh.write("{truncated\n[1]\n")
    code, out, err = run(capsys, "unpriced", "--spans", str(path))
    assert code == 1
    assert f"{path}:2: skipped: not valid JSON" in err
    assert f"{path}:3: skipped: expected an OTLP ExportTraceServiceRequest object" in err
    assert "my-model" in out


def test_unpriced_with_every_span_priced(capsys, tmp_path):
    path = tmp_path / "spans.jsonl"
    write_spans(path, [usage("gpt-4o"), usage("claude-haiku-4-5", "anthropic")])
    code, out, _ = run(capsys, "unpriced", "--spans", str(path))
    assert code == 0 and f"Every GenAI span in {path} has a price (2 spans)." in out


def test_unpriced_a_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "unpriced", "--spans", str(tmp_path / "none.jsonl"))
    assert code == 2 and "none.jsonl: no such file" in err
