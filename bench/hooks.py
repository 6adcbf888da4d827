"""Benchmarks of features still being built (issue 19, measures 3 and 4): skipped, saying why,
until the feature is in the daemon; then they run the module named below.

- `hf_endpoint` (measure 3), once `huggingface.mirror` exists (the daemon serving the Hub's
  download protocol at /hf): a job container downloading its model through the daemon's
  `HF_ENDPOINT`, cold through the daemon against straight from the upstream hub, and warm.
  To be written as `bench/hf_endpoint.py` with `measure(runs, sizes, profile)`.
- `site_store` (measure 4), once the `site` section exists (a site-wide second-level store):
  node B's cold job against node A's and against a node without one: `bench/site.py`, its
  upstreams behind the link, the site store on loopback.
Each returns a dict the report prints as a table of times (`times`: name -> summary()).
"""

from __future__ import annotations

import importlib
from typing import Any

from daemon.settings.schema import SECTIONS


def _has_setting(section: str, key: str | None = None) -> bool:
    model = SECTIONS.get(section)
    return model is not None and (key is None or key in model.model_fields)


def _run(module: str, feature: str, runs: int, sizes: list[int], profile: str) -> dict[str, Any]:
    try:
        bench = importlib.import_module(f"bench.{module}")
    except ModuleNotFoundError:
        return {"skipped": f"{feature} is in the daemon, but bench/{module}.py is not written yet"}
    result: dict[str, Any] = bench.measure(runs, sizes, profile)
    return result


def hf_endpoint(runs: int, sizes: list[int], profile: str) -> dict[str, Any]:
    feature = "the Hugging Face endpoint (huggingface.mirror, /hf)"
    if not _has_setting("huggingface", "mirror"):
        return {"skipped": f"{feature} has not landed in the daemon"}
    return _run("hf_endpoint", feature, runs, sizes, profile)


def site_store(runs: int, sizes: list[int], profile: str) -> dict[str, Any]:
    feature = "the site store ([site] store)"
    if not _has_setting("site"):
        return {"skipped": f"{feature} has not landed in the daemon"}
    return _run("site", feature, runs, sizes, profile)
