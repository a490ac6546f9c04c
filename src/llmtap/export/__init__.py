"""Getting spans out: bounded per-destination queues and exporter presets (app and service)."""
