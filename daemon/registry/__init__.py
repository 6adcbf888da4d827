"""The registry endpoint: the pull side of the OCI Distribution API, served from the store.

Engines are pointed at it as their registry mirror (Docker's `registry-mirrors`, containerd's
`hosts.toml`, Podman's `registries.conf`): every manifest and layer they pull is fetched once
per host, by the parallel, ranged, resumable, verified downloader, and streamed to them while
it lands. Modules by role:

    routes.py    the `/v2/` routes and the Distribution error format
    names.py     which registry and repository a request means (`ns`, a host path segment)
    mirror.py    tags, manifests and blobs out of the store (what the routes ask)
    serving.py   a blob's headers, Range, and its bytes as they land
    refusals.py  what it last refused, per name (a failed pull's cause)
    tokens.py    the token flow that brings an engine's credentials (`/v2/`'s challenge)
    pulls.py     each recent pull's bytes by source (upstream, site store, store) and rate
    listener.py  its own listener (`registry.listen`)
"""

from .listener import RegistryListener
from .mirror import RegistryMirror
from .pulls import Pull, Pulls
from .refusals import Refusals
from .routes import registry_app

__all__ = ["Pull", "Pulls", "Refusals", "RegistryListener", "RegistryMirror", "registry_app"]
