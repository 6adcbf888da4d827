"""Where job containers reach the host: the address this host holds on a bridge, read from the
host first, the engine's IPAM record only after it (a fresh engine leaves it out, issue 24)."""

from __future__ import annotations

from typing import Any

from daemon.engine.gateway import HostAddress, interface_ipv4, ipam_gateway, network_addresses
from daemon.engine.networks import BRIDGE_NAME

NO_SUCH_INTERFACE = "ncj-nonesuch0"


def fresh_default_bridge(interface: str | None = None, gateway: str | None = None) -> Any:
    """`docker network inspect bridge` as a 20.10 engine answers it: with a Gateway only once
    it has been restarted after making docker0."""
    config: dict[str, str] = {"Subnet": "172.17.0.0/16"}
    if gateway:
        config["Gateway"] = gateway
    options = {"com.docker.network.bridge.default_bridge": "true"}
    if interface:
        options[BRIDGE_NAME] = interface
    return {"Name": "bridge", "IPAM": {"Config": [config]}, "Options": options}


def test_an_interface_address_is_read_from_the_host() -> None:
    assert interface_ipv4("lo") == "127.0.0.1"
    assert interface_ipv4(NO_SUCH_INTERFACE) is None
    assert interface_ipv4("x" * 40) is None  # longer than any interface name


def test_the_ipam_gateway_is_the_ipv4_one_and_may_be_missing() -> None:
    assert ipam_gateway(fresh_default_bridge()) is None
    assert ipam_gateway({"IPAM": None}) is None
    assert ipam_gateway(fresh_default_bridge(gateway="172.17.0.1/16")) == "172.17.0.1"
    both = {"IPAM": {"Config": [{"Gateway": "fd00::1"}, {"Gateway": "10.9.0.1"}]}}
    assert ipam_gateway(both) == "10.9.0.1"


def test_a_bridge_without_a_recorded_gateway_is_found_by_its_interface() -> None:
    """The fresh engine's case: only `Subnet` in IPAM, the address on the Linux bridge."""
    found = network_addresses(fresh_default_bridge(interface="lo"), "the default bridge network")
    assert found == [
        HostAddress("127.0.0.1", "the host's address on lo (the default bridge network)")
    ]


def test_the_interface_comes_first_and_the_record_second() -> None:
    network = fresh_default_bridge(interface="lo", gateway="172.17.0.1")
    assert [a.address for a in network_addresses(network, "b")] == ["127.0.0.1", "172.17.0.1"]
    same = fresh_default_bridge(interface="lo", gateway="127.0.0.1")
    assert [a.address for a in network_addresses(same, "b")] == ["127.0.0.1"]


def test_a_bridge_the_host_cannot_see_falls_back_to_the_record_or_nothing() -> None:
    """A daemon in a container without the host's network sees no docker0."""
    unseen = fresh_default_bridge(interface=NO_SUCH_INTERFACE, gateway="172.17.0.1")
    assert network_addresses(unseen, "the default bridge network") == [
        HostAddress("172.17.0.1", "the Gateway the engine records for the default bridge network")
    ]
    assert network_addresses(fresh_default_bridge(interface=NO_SUCH_INTERFACE), "b") == []
