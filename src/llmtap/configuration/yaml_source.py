"""The text of ``llmtap.yaml`` before it is typed: YAML with line numbers, ``${env:...}``.

:func:`read_yaml` parses a file into plain data and the line of every key path (duplicate
keys are an error: YAML would keep the last one silently). :func:`substitute` replaces
``${env:VAR}`` and ``${env:VAR:-default}`` in every string (``$${`` writes a literal
``${``), reporting a missing variable or a malformed reference at its key path.
:func:`resolve_paths` makes the file paths of :data:`PATH_KEYS` relative to the file's
folder. :func:`literal_secrets` finds secrets written into the file rather than taken from
the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmtap.configuration.problems import ConfigError, Problem, join
from llmtap.secret_names import is_secret_name

if TYPE_CHECKING:
    import yaml

__all__ = [
    "CONFIG_ENV",
    "PATH_KEYS",
    "literal_secrets",
    "read_yaml",
    "resolve_paths",
    "substitute",
]

CONFIG_ENV = "LLMTAP_CONFIG"
_ENV_REF = re.compile(r"\$(\$?)\{env:([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


#: keys whose values name files; a relative path is relative to the config file's folder
#: (``[]``: every item of a list)
PATH_KEYS = (
    "export[].path",
    "pricing.file",
    "judge.review_queue",
    "service.tls_cert_file",
    "service.tls_key_file",
)


def resolve_paths(data: Mapping[str, Any], base_dir: str) -> Mapping[str, Any]:
    """``data`` with every relative path of :data:`PATH_KEYS` joined to ``base_dir`` (``~``
    is expanded); values of the wrong type are left for validation to report."""
    out = dict(data)
    for key in PATH_KEYS:
        _resolve(out, key.split("."), base_dir)
    return out


def _resolve(node: Any, parts: list[str], base_dir: str) -> None:
    if not isinstance(node, dict) or not parts:
        return
    name, rest = parts[0], parts[1:]
    each = name.endswith("[]")
    name = name.removesuffix("[]")
    if name not in node:
        return
    value = node[name]
    if each:
        if isinstance(value, list):
            items = [dict(v) if isinstance(v, Mapping) else v for v in value]
            for item in items:
                _resolve(item, rest, base_dir)
            node[name] = items
        return
    if rest:
        if isinstance(value, Mapping):
            node[name] = dict(value)
            _resolve(node[name], rest, base_dir)
        return
    if isinstance(value, str) and value.strip():
        expanded = os.path.expanduser(value)
        if not os.path.isabs(expanded):
            expanded = os.path.normpath(os.path.join(base_dir, expanded))
        node[name] = expanded


def read_yaml(source: str, from_env: bool = False) -> tuple[Any, dict[str, int]]:
    origin = f" (from {CONFIG_ENV})" if from_env else ""
    try:
        with open(source, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise ConfigError([Problem("", f"no such file{origin}")], source) from None
    except IsADirectoryError:
        raise ConfigError([Problem("", f"is a directory, not a file{origin}")], source) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem("", f"is not valid UTF-8 ({exc.reason})")], source) from None
    except OSError as exc:
        raise ConfigError(
            [Problem("", f"cannot be read: {exc.strerror}{origin}")], source
        ) from None
    import yaml  # only with a file to read: configure() without one stays lighter

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            message = f"{exc.problem} ({exc.context})"
        raise ConfigError(
            [
                Problem(
                    "",
                    f"YAML syntax error: {message}",
                    mark.line + 1 if mark else None,
                    mark.column + 1 if mark else None,
                )
            ],
            source,
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem("", f"YAML error: {exc}")], source) from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    duplicates: list[Problem] = []
    if node is not None:
        _index(node, "", lines, duplicates)
    if duplicates:
        raise ConfigError(duplicates, source)
    return data, lines


def _index(node: yaml.Node, path: str, lines: dict[str, int], dups: list[Problem]) -> None:
    """Line numbers of every key path; duplicate keys (YAML would keep the last silently)."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            if key == "<<":
                _index(value_node, path, lines, dups)
                continue
            child = join(path, key)
            line = key_node.start_mark.line + 1
            if key in seen:
                dups.append(
                    Problem(child, f"duplicate key (first given on line {seen[key]})", line)
                )
            seen.setdefault(key, line)
            lines.setdefault(child, line)
            _index(value_node, child, lines, dups)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = f"{path}[{i}]"
            lines.setdefault(child, item.start_mark.line + 1)
            _index(item, child, lines, dups)


def substitute(
    data: Any, path: str, env: Mapping[str, str], problems: list[Problem], env_paths: set[str]
) -> Any:
    if isinstance(data, Mapping):
        return {
            k: substitute(v, join(path, str(k)), env, problems, env_paths) for k, v in data.items()
        }
    if isinstance(data, list):
        return [substitute(v, f"{path}[{i}]", env, problems, env_paths) for i, v in enumerate(data)]
    if not isinstance(data, str) or "${" not in data:
        return data

    def replace(match: re.Match) -> str:
        escaped, body = match.group(1), match.group(2)
        if escaped:
            return "${env:" + body + "}"
        name, sep, default = body.partition(":-")
        if not _ENV_NAME.fullmatch(name):
            problems.append(
                Problem(
                    path,
                    f"malformed reference ${{env:{body}}}: expected ${{env:VAR}} or "
                    "${env:VAR:-default}",
                )
            )
            return ""
        env_paths.add(path)
        value = env.get(name)
        if sep:
            return value if value else default
        if value is None:
            problems.append(
                Problem(
                    path,
                    f"environment variable {name} is not set (referenced as ${{env:{name}}}; "
                    f"write ${{env:{name}:-default}} to give a fallback)",
                )
            )
            return ""
        return value

    return _ENV_REF.sub(replace, data)


def literal_secrets(data: Any, path: str, env_paths: set[str]) -> list[tuple[str, str]]:
    """Secret-like keys (API keys, tokens, auth headers) given a literal value rather than
    an ``${env:...}`` reference; ``when`` conditions are not settings and are skipped."""
    out: list[tuple[str, str]] = []
    if isinstance(data, Mapping):
        for key, value in data.items():
            child = join(path, str(key))
            if key == "when":
                continue
            if isinstance(value, str):
                if (
                    value.strip()
                    and child not in env_paths
                    and is_secret_name(str(key), cautious=True)
                ):
                    out.append((child, value))
            else:
                out.extend(literal_secrets(value, child, env_paths))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out.extend(literal_secrets(value, f"{path}[{i}]", env_paths))
    return out
