"""The fence: job containers reach the public internet, and nothing private of the host's.

rules      the rule set, from the settings alone (chains, what is rejected, the fingerprint)
plan       the settings and the host's DNS resolvers, as a plan for the rules
firewall   the host's iptables: install, check, remove
fence      `docker.fence` carried out: installed, trusted from a stamp, or why not
"""

from .fence import Fence, FenceStatus, install, remove, remove_stamp, write_stamp
from .plan import plan_of
from .rules import BRIDGE_PREFIX, FencePlan

__all__ = [
    "BRIDGE_PREFIX",
    "Fence",
    "FencePlan",
    "FenceStatus",
    "install",
    "plan_of",
    "remove",
    "remove_stamp",
    "write_stamp",
]
