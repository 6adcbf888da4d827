"""The variables that point a job container's Hub clients at the daemon's Hub endpoint, and
what a job's own variables say about them.

`HF_ENDPOINT` is what huggingface_hub (and so transformers, vLLM, TGI) reads; llama.cpp's
`-hf` reads `MODEL_ENDPOINT` first and `HF_ENDPOINT` after it, and adds the trailing `/` it
joins paths to when it is missing, so it gets the same URL with that `/`. `HF_HUB_DISABLE_XET=1`
keeps huggingface_hub on plain HTTP even when its cache holds a tree listing with Xet hashes
from a download straight from the Hub (hub >= 1.22 would ask the endpoint for a Xet token
instead of HEAD, and fail: the endpoint serves HTTP only). A job's own value of any of them wins.

Some variables the job may set take its downloads around the cache whatever it is given:
its own `HF_ENDPOINT`, offline mode, ModelScope. The op's record says so (`hub_bypassed`), so
an operator who wonders why a job downloaded everything itself finds why.
"""

from __future__ import annotations

_FALSE = ("", "0", "false", "no", "off")


def hub_variables(url: str) -> dict[str, str]:
    """What a container is given to reach the Hub endpoint at `url` (`.../hf`)."""
    return {
        "HF_ENDPOINT": url,
        "HF_HUB_DISABLE_XET": "1",
        "MODEL_ENDPOINT": url.rstrip("/") + "/",
    }


def bypass_reason(env: dict[str, str]) -> str | None:
    """Why the job's own variables take (some of) its Hub downloads around the cache."""
    if "HF_ENDPOINT" in env:
        return "the job sets HF_ENDPOINT: its Hub clients download from it, not the cache"
    if _true(env.get("HF_HUB_OFFLINE")) or _true(env.get("TRANSFORMERS_OFFLINE")):
        name = "HF_HUB_OFFLINE" if _true(env.get("HF_HUB_OFFLINE")) else "TRANSFORMERS_OFFLINE"
        return f"the job sets {name}: its Hub clients read only their own cache"
    if _true(env.get("VLLM_USE_MODELSCOPE")):
        return "the job sets VLLM_USE_MODELSCOPE: vLLM downloads from ModelScope, not the Hub"
    if "MODEL_ENDPOINT" in env:
        return "the job sets MODEL_ENDPOINT: llama.cpp's -hf downloads from it, not the cache"
    return None


def _true(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in _FALSE
