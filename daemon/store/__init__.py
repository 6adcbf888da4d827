"""The content-addressed store: blobs, views, the index, leases, pins, ttl and eviction.

The package's public surface is what this module exports; store.py says which module does what.

It knows nothing of HTTP or Docker: callers hand it an `EntryRequest` and a `Resolver`.
"""

from .lookup import Lookup
from .maintenance import SweepReport, VerifyReport
from .models import (
    CRC_ALGORITHMS,
    BlobSink,
    Crc,
    Entry,
    EntryDetails,
    EntryRequest,
    EntryState,
    Expected,
    Fetch,
    FetchEnded,
    FileFetch,
    FileSpec,
    Lease,
    Manifest,
    Progress,
    Resolver,
    Scratch,
    SiteOrigin,
    StoredFile,
    TypeTotal,
    entry_id_for,
)
from .reading import FileStream
from .store import Store, Usage
from .views import validate_relative_path, validate_tree

__all__ = [
    "CRC_ALGORITHMS",
    "BlobSink",
    "Crc",
    "Entry",
    "EntryDetails",
    "EntryRequest",
    "EntryState",
    "Expected",
    "Fetch",
    "FetchEnded",
    "FileFetch",
    "FileSpec",
    "FileStream",
    "Lease",
    "Lookup",
    "Manifest",
    "Progress",
    "Resolver",
    "Scratch",
    "SiteOrigin",
    "Store",
    "StoredFile",
    "SweepReport",
    "TypeTotal",
    "Usage",
    "VerifyReport",
    "entry_id_for",
    "validate_relative_path",
    "validate_tree",
]
