"""GET /v1/status says where job containers reach the Hub endpoint, even before it can."""

from __future__ import annotations

from tests.unit.api.conftest import Api


async def test_without_an_engine_the_containers_listener_is_pending(api: Api) -> None:
    answer = await api.client.get("/v1/status")
    assert answer.status == 200
    body = await answer.json()
    assert body["docker"]["reachable"] is False
    assert body["hub_listener"] == {
        "state": "pending",
        "detail": "not bound yet: the Docker engine was not reached",
        "address": None,
        "source": None,
        "url": None,
        "checked_at": None,
    }
