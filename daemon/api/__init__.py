"""The HTTP API: aiohttp routes, problem+json errors, auth; thin handlers over the components
the composition root built (app.py assembles them)."""
