"""The ground floor every package stands on: time (`clock`), sizes and durations (`units`),
retries (`retry`), strict parsing (`strict`, `literals`), the API's wire types (`wire`), memory
readings (`memory`), bounds on foreign input (`limits`), systemd notifications (`notify`), the
SQLite thread (`db`) and guarded background tasks (`aiotasks`). Nothing here knows the domain:
no store, no jobs, no HTTP routes."""
