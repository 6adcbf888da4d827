"""The Hub endpoint: the Hugging Face Hub's download protocol at `/hf`, served from the store.

Containers that download their own weights (vLLM, TGI, transformers: `--model org/repo`;
llama.cpp: `-hf org/repo`) are pointed at it with `HF_ENDPOINT` (and `MODEL_ENDPOINT`), so
every file they ask for is fetched once per host and served from the store afterwards, while
it downloads already. Modules by role:

    routes.py     the `/hf` routes (repo info, tree, paths-info, resolve, refs, manifests)
    gguf.py       the GGUF file a quantization tag names (llama.cpp's manifests)
    mirror.py     what the routes ask: revisions, access, files
    revisions.py  revision → commit and listing, a store entry kept for the ttl
    access.py     gated and private repos: each token put to the upstream Hub, answers kept
    serving.py    a file's headers, Range, and its bytes as they land
    tree.py       tree and paths-info answers from a listing
    answers.py    the Hub's JSON shapes;  problems.py   the Hub's errors
    listener.py   the containers' listener and their HF_ENDPOINT
    openapi.py    the routes in the daemon's OpenAPI document
"""

from .answers import HubError, RepoInfo, Sibling, SiblingLfs, TreeEntries, TreeEntry, TreeLfs
from .listener import ContainerHub, ContainerListener, ListenerReport
from .mirror import HubMirror
from .openapi import RESPONSES as OPENAPI_RESPONSES
from .openapi import paths as openapi_paths
from .routes import PREFIX, hub_app

__all__ = [
    "OPENAPI_RESPONSES",
    "PREFIX",
    "ContainerHub",
    "ContainerListener",
    "HubError",
    "HubMirror",
    "ListenerReport",
    "RepoInfo",
    "Sibling",
    "SiblingLfs",
    "TreeEntries",
    "TreeEntry",
    "TreeLfs",
    "hub_app",
    "openapi_paths",
]
