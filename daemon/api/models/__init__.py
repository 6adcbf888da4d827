"""The API's response bodies: one class per JSON shape, served and documented from the same
declaration (see `daemon.wire`)."""

from ...util.wire import Instant, Omitted, body, respond, timestamp, to_json
from .endpoints import Endpoint, HealthCheckState
from .entries import Entry, EntryFile, EntryList, Progress, SweepReport, VerifyReport, entry_files
from .health import Health, Readiness, Unready
from .jobs import ImageUse, Job, JobList, Op, OpCache, OpTimings, ResourceUse, redacted
from .market import Market, MarketItem
from .plans import ImagePlan, JobPlan, MountPlan, OpPlan, ResourcePlan
from .problem import FieldProblem, Problem
from .registry import RegistryPull
from .site import SiteStatus, SiteSweepReport
from .status import (
    DockerStatus,
    FenceStatus,
    HubListenerStatus,
    MarketSummary,
    NodeRequestStatus,
    NodeSocketStatus,
    PeriodicTask,
    RegistryStatus,
    Status,
    StoreStatus,
    TransferStatus,
)

__all__ = [
    "DockerStatus",
    "Endpoint",
    "Entry",
    "EntryFile",
    "EntryList",
    "FenceStatus",
    "FieldProblem",
    "Health",
    "HealthCheckState",
    "HubListenerStatus",
    "ImagePlan",
    "ImageUse",
    "Instant",
    "Job",
    "JobList",
    "JobPlan",
    "Market",
    "MarketItem",
    "MarketSummary",
    "MountPlan",
    "NodeRequestStatus",
    "NodeSocketStatus",
    "Omitted",
    "Op",
    "OpCache",
    "OpPlan",
    "OpTimings",
    "PeriodicTask",
    "Problem",
    "Progress",
    "Readiness",
    "RegistryPull",
    "RegistryStatus",
    "ResourcePlan",
    "ResourceUse",
    "SiteStatus",
    "SiteSweepReport",
    "Status",
    "StoreStatus",
    "SweepReport",
    "TransferStatus",
    "Unready",
    "VerifyReport",
    "body",
    "entry_files",
    "redacted",
    "respond",
    "timestamp",
    "to_json",
]
