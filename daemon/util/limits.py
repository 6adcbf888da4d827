"""Limits: the bounds on input the daemon did not make, and the process's open files.

Bounds on input (ARCHITECTURE.md "Bounds on input"). Everything a client or an upstream
sends is checked against one of these before the work it asks for starts, and refused with
an error that names the bound: a job of a million ops, a site manifest of a million files or
a listing that never ends would otherwise cost the daemon time and memory in proportion to
what a stranger chose (one 919 KB job once held the daemon for a minute and 5.5 GB). They
sit far above anything real: Nosana's templates are one op and 1.2 KB, a model repo a few
thousand files, an Ollama manifest a few layers. They are not settings: a host that meets one
has been sent something hostile or broken, and the bound says which.

One bound per kind of input, used by the one module that reads that kind:

    api.body_bytes                   api/shapes.py                   (a job, a resource)
    job.ops, json.depth              jobs/spec.py                    (a client's job)
    upstream.answer_bytes            sources/transfer.py             (any small answer: the
                                     default of every metadata GET, site store chunks)
    upstream.error_bytes             sources/transfer.py             (an error page)
    entry.files                      every listing or manifest that names an entry's files:
                                     sources/huggingface.py, hub_upstream.py, s3/resolver.py,
                                     site/layout.py
    hub.answer_bytes, hub.pages      sources/hub_upstream.py         (repo info, tree pages)
    s3.pages                         sources/s3/control.py           (a listing a job named)
    site.manifest_bytes              site/manifests.py, site/layout.py
    ollama.manifest_bytes, .layers   sources/ollama.py
    registry.manifest_bytes          for the registry endpoint's manifests (the OCI
                                     Distribution's own cap on a manifest)
    market.bytes, market.items       market.py                       (the required list)
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

from ..logs import get_logger
from .units import human_size

log = get_logger(__name__)

MiB = 1024 * 1024


@dataclass(frozen=True)
class Bound:
    """At most `limit` of `unit` in one input of a kind; `name` is how errors and docs say it."""

    name: str
    limit: int
    unit: str

    def over(self, value: int, what: str) -> str | None:
        """None within the bound; else the sentence that refuses `what` (it names the bound)."""
        if value <= self.limit:
            return None
        if self.unit == "bytes":
            said, most = f"{value:,} bytes", human_size(self.limit)
        else:
            said, most = f"{value:,} {self.unit}", f"{self.limit:,}"
        return f"{what} has {said}: more than the {most} this daemon takes (bound {self.name})"


API_BODY_BYTES = Bound("api.body_bytes", 1 * MiB, "bytes")
"""A JSON body of the API: a job definition (the biggest of Nosana's templates is 1.2 KB), a
resource. Refused from its `Content-Length`, before a byte of it is read."""
JOB_OPS = Bound("job.ops", 1_000, "ops")
"""Ops in one job (Nosana's templates have one; a job is run on one host)."""
JSON_DEPTH = Bound("json.depth", 32, "levels of nesting")
"""Nesting of a client's JSON document (a job's deepest place, a health check's header,
is 9 deep)."""
METADATA_BYTES = Bound("upstream.answer_bytes", 64 * MiB, "bytes")
"""Any answer read whole from beyond this host where no tighter bound is named (a site store
chunk is at most 64 MiB)."""
ERROR_BYTES = Bound("upstream.error_bytes", 64 * 1024, "bytes")
"""An error page in place of a file's bytes: read for what it says, no further."""
ENTRY_FILES = Bound("entry.files", 20_000, "files")
"""Files of one entry, however they are listed (a model repo has tens to a few thousand)."""
HUB_ANSWER_BYTES = Bound("hub.answer_bytes", 32 * MiB, "bytes")
"""One answer of the Hub's API: repo info with every sibling, one page of a tree."""
HUB_PAGES = Bound("hub.pages", 1_000, "pages")
"""Pages of one tree listing (the Hub's pages hold 1,000 entries; `entry.files` bounds the
entries too, this bounds a listing of empty pages)."""
S3_PAGES = Bound("s3.pages", 1_000, "pages")
"""Pages of one S3 listing (1,000 keys each on AWS; empty pages included)."""
SITE_MANIFEST_BYTES = Bound("site.manifest_bytes", 16 * MiB, "bytes")
"""A site manifest (about 250 bytes a file and 70 a chunk of 8 MiB: 20,000 files and 1 TiB of
chunks fit)."""
OLLAMA_MANIFEST_BYTES = Bound("ollama.manifest_bytes", 4 * MiB, "bytes")
"""An Ollama model's manifest (a few layers, under 2 KB)."""
OLLAMA_LAYERS = Bound("ollama.layers", 1_000, "layers")
"""Layers of an Ollama model's manifest (a model, its template, params, licence: a handful)."""
REGISTRY_MANIFEST_BYTES = Bound("registry.manifest_bytes", 4 * MiB, "bytes")
"""An image manifest or index: the OCI Distribution's own cap (registries refuse bigger)."""
MARKET_BYTES = Bound("market.bytes", 4 * MiB, "bytes")
"""The market's required list."""
MARKET_ITEMS = Bound("market.items", 1_000, "items")
"""Images and resources on the market's required list (each is pinned on every host)."""


def json_depth(document: object, most: int) -> int:
    """How deep `document` nests, counted without recursion and no further than `most + 1`
    (enough to say it is too deep)."""
    deepest = 0
    level: list[object] = [document]
    while level and deepest <= most:
        deeper: list[object] = []
        for node in level:
            if isinstance(node, dict):
                deeper.extend(node.values())
            elif isinstance(node, list):
                deeper.extend(node)
        if deeper:
            deepest += 1
        level = deeper
    return deepest


def raise_open_files_limit() -> int:
    """Set the soft RLIMIT_NOFILE to the hard one; returns the limit now in force.

    Every API connection, download part, temp file and SQLite file is a descriptor; a shell's
    soft limit of 1,024 is reached by a burst of clients during a large download, and `accept`
    then fails. The hard limit is what the operator (or systemd's LimitNOFILE) granted; the
    soft limit is only a default, so the daemon takes what it was granted.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        log.warning("limits.open_files_unchanged", soft=soft, hard=hard, error=str(exc))
        return soft
    return hard
