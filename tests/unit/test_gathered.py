"""Concurrent queries of one event loop share round trips, and each hears its own outcome."""

from __future__ import annotations

import asyncio

import pytest

from infrastructure.readmodels.redis.loop import Gathered


class Echo:
    """A round trip that answers each query doubled, held until the test releases it."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail_next = False

    async def send(self, queries: list[int]) -> list[int]:
        self.groups.append(list(queries))
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("Redis went away")
        return [q * 2 for q in queries]


def test_queries_asked_while_one_is_in_flight_go_together_in_the_next_round_trip() -> None:
    async def scenario() -> tuple[list[int], list[list[int]]]:
        echo = Echo()
        gathered: Gathered[int, int] = Gathered(echo.send)
        first = asyncio.create_task(gathered.ask(1))
        await asyncio.sleep(0)  # the first one is in flight alone
        rest = [asyncio.create_task(gathered.ask(q)) for q in (2, 3, 4)]
        await asyncio.sleep(0)
        echo.release.set()
        answers = await asyncio.gather(first, *rest)
        return answers, echo.groups

    answers, groups = asyncio.run(scenario())
    assert answers == [2, 4, 6, 8]
    assert groups == [[1], [2, 3, 4]]


def test_a_failed_round_trip_reaches_each_of_its_queries_and_the_next_ones_still_go() -> None:
    async def scenario() -> tuple[list[BaseException | int], int]:
        echo = Echo()
        echo.fail_next = True
        gathered: Gathered[int, int] = Gathered(echo.send)
        failing = [asyncio.create_task(gathered.ask(q)) for q in (1, 2)]
        await asyncio.sleep(0)
        echo.release.set()
        outcomes = await asyncio.gather(*failing, return_exceptions=True)
        return outcomes, await gathered.ask(5)

    outcomes, later = asyncio.run(scenario())
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    assert later == 10


def test_a_cancelled_query_does_not_disturb_the_others_of_its_group() -> None:
    async def scenario() -> list[int]:
        echo = Echo()
        gathered: Gathered[int, int] = Gathered(echo.send)
        gone = asyncio.create_task(gathered.ask(1))
        kept = asyncio.create_task(gathered.ask(2))
        await asyncio.sleep(0)
        gone.cancel()
        echo.release.set()
        with pytest.raises(asyncio.CancelledError):
            await gone
        return [await kept]

    assert asyncio.run(scenario()) == [4]
