"""docs/backends/*.md, as written: each page's configuration is one llmtap takes, and it
sends where and with the headers the page says (through the real preset targets and
evaluation sinks); the Phoenix page's configuration is the one ``llmtap demo --phoenix``
gives its service, which tests/e2e/test_phoenix.py runs against a real Phoenix; every
``llmtap`` command of a page is one a named test runs. No Langfuse, Datadog or Honeycomb
server runs here (their request shapes: tests/export/test_backend_requests.py and
tests/service/sinks/test_request_shapes.py)."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmtap.config_file import load_config
from llmtap.demo.loop import demo_config
from llmtap.export.presets import target_for
from llmtap.service.sinks.config import build_sinks

DOCS = Path(__file__).resolve().parents[1] / "docs" / "backends"
README = Path(__file__).resolve().parents[1] / "README.md"
ENV = {
    "LANGFUSE_PUBLIC_KEY": "pk-lf-doc",
    "LANGFUSE_SECRET_KEY": "sk-lf-doc",
    "DD_API_KEY": "dd-doc",
    "HONEYCOMB_API_KEY": "hc-doc",
}
#: the commands the pages give, and the test that runs each
COMMANDS = {
    "llmtap demo --ui": "tests/demo/test_ui.py",
    "llmtap demo --phoenix http://127.0.0.1:6006/v1/traces": "tests/e2e/test_phoenix.py",
    "llmtap serve --config collector-config/llmtap-service.yaml": "tests/e2e/test_end_to_end.py",
}


def blocks(page: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), re.S)


def loaded(tmp_path: Path, page: str) -> Any:
    (block,) = blocks(page, "yaml")
    path = tmp_path / "llmtap.yaml"
    path.write_text(block)
    return load_config(str(path), ENV)


def sinks(config: Any) -> dict[str, Any]:
    built = build_sinks(config.service.evaluation_sinks)
    for _, sink in built:
        sink.close()
    return {options.sink: sink for options, sink in built}


def test_every_page_is_linked_from_the_readme() -> None:
    readme = README.read_text(encoding="utf-8")
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    assert pages == [
        "datadog.md",
        "honeycomb.md",
        "jaeger.md",
        "langfuse.md",
        "phoenix.md",
        "tempo.md",
    ]
    for page in pages:
        assert f"(docs/backends/{page})" in readme, page


def llmtap_commands(block: str) -> list[str]:
    """The ``llmtap`` commands of a shell block, without the environment assignments and
    line continuations before them (other tools' commands are the pages' own business)."""
    commands = []
    for command in block.replace("\\\n", " ").splitlines():
        words = [w for w in command.split() if not re.match(r"^[A-Z_]+=", w)]
        if words and words[0] == "llmtap":
            commands.append(" ".join(words))
    return commands


def test_every_command_of_a_page_is_one_a_test_runs() -> None:
    found = set()
    for page in DOCS.glob("*.md"):
        for block in blocks(page.name, "sh"):
            for command in llmtap_commands(block):
                assert command in COMMANDS, (page.name, command)
                found.add(command)
    assert found == set(COMMANDS)
    for command, test in COMMANDS.items():
        runner = (Path(__file__).resolve().parents[1] / test).read_text()
        assert "--phoenix" not in command or '"--phoenix"' in runner
        assert "--ui" not in command or '"--ui"' in runner
        assert "--config" not in command or command.split("--config ")[1] in runner


def test_phoenix_page_is_the_demos_configuration(tmp_path: Path) -> None:
    config = loaded(tmp_path, "phoenix.md")
    (export,) = config.export
    assert (export.preset, export.endpoint) == ("phoenix", "http://127.0.0.1:6006/v1/traces")
    assert target_for(export, "support-bot").endpoint == export.endpoint
    assert sinks(config)["phoenix"].target == "http://127.0.0.1:6006/v1/span_annotations"
    documented = yaml.safe_load(blocks("phoenix.md", "yaml")[0])
    (tmp_path / "demo").mkdir()
    demo = yaml.safe_load(demo_config(tmp_path / "demo", phoenix=export.endpoint).read_text())
    assert [e for e in demo["export"] if e["preset"] == "phoenix"] == documented["export"]
    assert demo["service"]["evaluation_sinks"] == documented["service"]["evaluation_sinks"]


def test_langfuse_page(tmp_path: Path) -> None:
    config = loaded(tmp_path, "langfuse.md")
    (export,) = config.export
    target = target_for(export, "support-bot")
    assert target.endpoint == "https://cloud.langfuse.com/api/public/otel/v1/traces"
    basic = "Basic " + base64.b64encode(b"pk-lf-doc:sk-lf-doc").decode()
    assert target.headers == {"Authorization": basic, "x-langfuse-ingestion-version": "4"}
    assert sinks(config)["langfuse"].target == "https://cloud.langfuse.com/api/public/scores"


def test_datadog_page(tmp_path: Path) -> None:
    config = loaded(tmp_path, "datadog.md")
    (export,) = config.export
    target = target_for(export, "support-bot")
    assert target.endpoint == "https://otlp.datadoghq.eu/v1/traces"
    assert target.headers == {
        "dd-api-key": "dd-doc",
        "dd-otlp-source": "llmobs",
        "dd-ml-app": "support-bot",
    }
    sink = sinks(config)["datadog_llmobs"]
    assert sink.target == "https://api.datadoghq.eu/api/intake/llm-obs/v2/eval-metric"


def test_honeycomb_page(tmp_path: Path) -> None:
    config = loaded(tmp_path, "honeycomb.md")
    (export,) = config.export
    target = target_for(export, "support-bot")
    assert target.endpoint == "https://api.eu1.honeycomb.io/v1/traces"
    assert target.headers == {"x-honeycomb-team": "hc-doc"}
    assert not config.service.evaluation_sinks


@pytest.mark.parametrize("page", ["langfuse.md", "datadog.md", "honeycomb.md"])
def test_pages_without_a_server_here_say_so(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    assert "server runs here" in text
    assert "tests/export/test_backend_requests.py" in text
