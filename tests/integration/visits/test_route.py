"""Today's and tomorrow's route: ordered, with windows, addresses and briefings; ETag → 304."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.events import payloads as p
from tests.integration.visits.conftest import ZONE

pytestmark = pytest.mark.integration


def _today():
    return datetime.now(ZoneInfo(ZONE)).date()


async def test_todays_route_is_ordered_and_complete(visits, agent_id) -> None:
    second = await visits.assign(agent_id, sequence=2)
    first = await visits.assign(agent_id, sequence=1)
    cancelled = await visits.assign(agent_id, sequence=3)
    await visits.apply(
        p.VisitCancelled(
            account_id=cancelled.account_id,
            visit_id=cancelled.visit_id,
            agent_id=agent_id,
            reason="replanned",
        )
    )
    await visits.assign(agent_id, plan_date=_today() + timedelta(days=1))

    r = await visits.client.get("/v1/me/route/today", headers=visits.agent(agent_id), params={"tz": ZONE})
    assert r.status_code == 200, r.text
    route = r.json()
    assert route["plan_date"] == _today().isoformat()
    assert [v["visit_id"] for v in route["visits"]] == [str(first.visit_id), str(second.visit_id)]
    stop = route["visits"][0]
    assert (
        stop["address"]["city"] == "Shenzhen"
        and stop["address"]["location"]["lat"] == first.address.location.lat
    )
    assert stop["briefing"]["overdue_amount"] == "2500.00"
    assert stop["window_start"] < stop["window_end"]


async def test_tomorrows_route_and_its_etag(visits, agent_id) -> None:
    tomorrow = await visits.assign(agent_id, plan_date=_today() + timedelta(days=1))
    headers = visits.agent(agent_id)
    r = await visits.client.get("/v1/me/route/tomorrow", headers=headers, params={"tz": ZONE})
    assert [v["visit_id"] for v in r.json()["visits"]] == [str(tomorrow.visit_id)]
    etag = r.headers["etag"]

    unchanged = await visits.client.get(
        "/v1/me/route/tomorrow", headers={**headers, "If-None-Match": etag}, params={"tz": ZONE}
    )
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["etag"] == etag
    weak = await visits.client.get(
        "/v1/me/route/tomorrow",
        headers={**headers, "If-None-Match": f'"other", W/{etag}'},
        params={"tz": ZONE},
    )
    assert weak.status_code == 304

    await visits.apply(
        p.VisitRescheduled(
            account_id=tomorrow.account_id,
            visit_id=tomorrow.visit_id,
            agent_id=agent_id,
            plan_date=tomorrow.plan_date,
            sequence=4,
            window_start=tomorrow.window_start + timedelta(hours=2),
            window_end=tomorrow.window_end + timedelta(hours=2),
        )
    )
    changed = await visits.client.get(
        "/v1/me/route/tomorrow", headers={**headers, "If-None-Match": etag}, params={"tz": ZONE}
    )
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["visits"][0]["sequence"] == 4


async def test_an_unknown_time_zone_is_a_clear_422(visits, agent_id) -> None:
    r = await visits.client.get(
        "/v1/me/route/today", headers=visits.agent(agent_id), params={"tz": "Mars/Olympus"}
    )
    assert r.status_code == 422
    assert r.json() == {"detail": [{"reason": "unknown time zone", "field": "tz"}]}
