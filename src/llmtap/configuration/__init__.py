"""How llmtap reads configuration: typed options per component, one builder, factories.

* :mod:`~llmtap.configuration.problems`: :class:`Problem` and :class:`ConfigError`
  (``file:line: key: problem``, every problem at once), and how values are shown (secrets
  never).
* :mod:`~llmtap.configuration.builder`: the one builder, on cattrs: a mapping into a
  component's options dataclass, every problem with its key path.
* :mod:`~llmtap.configuration.factories`: registries of components by type name (options
  type + factory), after the OpenTelemetry Collector's component model.
* :mod:`~llmtap.configuration.yaml_source`: the file's text: YAML with line numbers,
  ``${env:...}``, relative paths, literal secrets.
* :mod:`~llmtap.configuration.reference`: the Markdown reference of every key, generated
  from the options dataclasses.

``llmtap.yaml`` itself (its sections, loading, the settings it gives) is
:mod:`llmtap.config_file`.
"""
