"""One contract for the idempotency answer stores: memory and Redis keep answers alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from domain.ports import AnswerStore
from infrastructure.readmodels.memory.answers import MemoryAnswerStore
from infrastructure.readmodels.redis.answers import RedisAnswerStore


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def answers(request: pytest.FixtureRequest) -> Iterator[AnswerStore]:
    if request.param == "memory":
        yield MemoryAnswerStore()
        return
    client: redis.Redis = request.getfixturevalue("redis_client")
    prefix: str = request.getfixturevalue("redis_prefix")
    yield RedisAnswerStore(client, prefix, b"k" * 32)


def test_an_unknown_key_has_no_answer(answers: AnswerStore) -> None:
    assert answers.load("register", "never-used") is None


def test_a_saved_answer_is_loaded_with_its_fingerprint(answers: AnswerStore) -> None:
    answers.save("register", "key-1", "fp-1", b'{"id":1}')

    assert answers.load("register", "key-1") == ("fp-1", b'{"id":1}')


def test_scopes_keep_their_answers_apart(answers: AnswerStore) -> None:
    answers.save("register", "key-1", "fp-1", b"a")
    answers.save("checkin", "key-1", "fp-2", b"b")

    assert answers.load("register", "key-1") == ("fp-1", b"a")
    assert answers.load("checkin", "key-1") == ("fp-2", b"b")


def test_a_later_answer_under_one_key_replaces_the_earlier(answers: AnswerStore) -> None:
    answers.save("register", "key-1", "fp-1", b"a")
    answers.save("register", "key-1", "fp-2", b"b")

    assert answers.load("register", "key-1") == ("fp-2", b"b")
