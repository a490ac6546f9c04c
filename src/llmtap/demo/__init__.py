"""The offline demo: an example app against the bundled model server, traced by llmtap."""
