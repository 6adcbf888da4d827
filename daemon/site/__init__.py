"""The site store: a second-level store of blobs and manifests shared by the nodes of a site,
in any S3-compatible bucket (`site.store`). See site.py for who does what.

It sits between the cache and the sources: the resolver it hands the store is the source's,
with the site store tried first, and what became ready here is uploaded in the background.
"""

from .site import Site, SiteReport
from .sweep import SiteSweep

__all__ = ["Site", "SiteReport", "SiteSweep"]
