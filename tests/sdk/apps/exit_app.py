"""Makes APP_UNITS units of work (two spans each) and exits without flushing anything, or
with ``Configured.shutdown()`` when APP_SHUTDOWN=explicit. Prints ``units-done`` first."""

from __future__ import annotations

import os
import sys
import time

import appkit

done = appkit.setup("exit-app")
client = appkit.openai_client()
for i in range(int(os.environ.get("APP_UNITS", "25"))):
    appkit.work(client, f"u{i}")
print("units-done", os.getpid(), flush=True)
if os.environ.get("APP_SHUTDOWN") == "explicit":
    started = time.monotonic()
    done.shutdown()
    print(f"shutdown-s {time.monotonic() - started:.3f}", flush=True)
sys.exit(0)
