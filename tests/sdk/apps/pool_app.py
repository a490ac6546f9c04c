"""multiprocessing.Pool with the fork start method: llmtap is set up in the parent, which
makes a span right before forking (still queued when the children start), then the pool's
children do the units of work. Prints {"parent": pid, "units": {unit: pid}} as JSON."""

from __future__ import annotations

import json
import multiprocessing
import os

import appkit

_client = None


def task(unit: str) -> tuple[str, int]:
    global _client
    if _client is None:
        _client = appkit.openai_client()
    return unit, appkit.work(_client, unit)


if __name__ == "__main__":
    appkit.setup("pool-app")
    appkit.startup_span(str(os.getpid()))
    pool = multiprocessing.get_context("fork").Pool(2)
    units = [f"u{i}" for i in range(int(os.environ.get("APP_UNITS", "20")))]
    done = dict(pool.map(task, units, chunksize=1))
    pool.close()
    pool.join()
    print(json.dumps({"parent": os.getpid(), "units": done}), flush=True)
