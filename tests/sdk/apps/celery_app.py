"""A Celery app on kombu's filesystem transport and the file result backend (no service).

The worker's main process imports this module (llmtap set up there), then its prefork pool
forks the children that run the tasks. ``CELERY_DIR`` holds the broker and result folders.
"""

from __future__ import annotations

import os
import time

from celery import Celery

folder = os.environ["CELERY_DIR"]
app = Celery("celery_app")
app.conf.update(
    broker_url="filesystem://",
    broker_transport_options={
        "data_folder_in": os.path.join(folder, "queue"),
        "data_folder_out": os.path.join(folder, "queue"),
        "processed_folder": os.path.join(folder, "processed"),
        "control_folder": os.path.join(folder, "control"),
        "store_processed": False,
        "polling_interval": 0.05,
    },
    result_backend="file://" + os.path.join(folder, "results"),
    worker_prefetch_multiplier=1,
    task_acks_late=False,
)

if os.environ.get("CELERY_ROLE") == "worker":
    import appkit

    appkit.setup("celery-app")
    appkit.startup_span(str(os.getpid()))
    _client = None

    @app.task(name="work")
    def work(unit: str) -> int:
        global _client
        if _client is None:
            _client = appkit.openai_client()
        pid = appkit.work(_client, unit)
        time.sleep(0.05)
        return pid
