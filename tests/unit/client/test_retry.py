"""The retry policy as a pure function, then both twins following it against a fake server."""

from __future__ import annotations

import httpx
import pytest

from kerasserve_client import (
    ClientTimeout,
    ConnectError,
    DeadlineExceeded,
    InvalidImage,
    Overloaded,
    RateLimited,
    Retry,
    TransportError,
    Unavailable,
)
from kerasserve_client.errors import APIError
from tests.unit.client.fake_server import JPEG, error, parts

PREDICT = ("POST", "/v1/models/MobileNetV2/predict")


def overloaded(retry_after: float | None = None) -> Overloaded:
    return Overloaded("full", status_code=503, code="overloaded", retry_after=retry_after)


def no_jitter(**kwargs) -> Retry:
    return Retry(jitter=0, **kwargs)


def test_backoff_doubles_up_to_the_cap_then_gives_up():
    policy = no_jitter(max_retries=5, backoff=0.5, max_backoff=3)

    delays = [policy.delay(overloaded(), n) for n in range(6)]

    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0, None]


def test_retry_after_is_waited_exactly():
    policy = no_jitter()

    assert policy.delay(overloaded(retry_after=4), 0) == 4
    assert policy.delay(overloaded(retry_after=0), 2) == 0


def test_a_retry_after_longer_than_allowed_raises_instead_of_sleeping():
    policy = no_jitter(max_retry_after=10)

    assert policy.delay(overloaded(retry_after=10), 0) == 10
    assert policy.delay(overloaded(retry_after=11), 0) is None


def test_jitter_stretches_the_wait_by_at_most_its_fraction():
    policy = Retry(jitter=0.5, backoff=1, random=lambda: 1.0)

    assert policy.delay(overloaded(), 0) == 1.5
    assert policy.delay(overloaded(retry_after=2), 0) == 3.0
    assert Retry(jitter=0.5, backoff=1, random=lambda: 0.0).delay(overloaded(), 0) == 1.0


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "invalid_image"), (401, "unauthorized"), (404, "model_not_found"), (408, "request_timeout"),
     (413, "too_many_images"), (422, "invalid_request"), (500, "internal_error"), (504, "deadline_exceeded")],
)  # fmt: skip
def test_only_the_configured_5xx_are_retried(status, code):
    err = APIError("x", status_code=status, code=code)

    assert no_jitter().delay(err, 0) is None


def test_4xx_statuses_cannot_be_configured_for_retry():
    with pytest.raises(ValueError, match=r"statuses must be 5xx.*got \[429\]"):
        Retry(statuses=frozenset({429, 503}))


def test_504_can_be_opted_in():
    err = DeadlineExceeded("late", status_code=504, code="deadline_exceeded")

    assert no_jitter(statuses=frozenset({503, 504})).delay(err, 0) == 0.25


def test_connection_failures_are_retried_unless_turned_off():
    refused = ConnectError("refused")

    assert no_jitter().delay(refused, 0) == 0.25
    assert no_jitter(connect_errors=False).delay(refused, 0) is None


def test_failures_after_sending_are_retried_only_when_asked():
    mid_request = TransportError("reset", sent=True)

    assert no_jitter().delay(mid_request, 0) is None
    assert no_jitter(sent_errors=True).delay(mid_request, 0) == 0.25


def test_retry_off_and_from_int():
    from kerasserve_client.retry import as_retry

    assert as_retry(None).delay(overloaded(), 0) is None
    assert as_retry(0).delay(overloaded(), 0) is None
    assert as_retry(5).max_retries == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_retries": -1}, "max_retries must be >= 0, got -1"),
        ({"backoff": -0.1}, "backoff must be >= 0, got -0.1"),
        ({"jitter": -1}, "jitter must be >= 0, got -1"),
    ],
)
def test_bad_settings_are_refused_with_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Retry(**kwargs)


# The twins follow the policy.


async def test_overload_is_retried_after_retry_after_and_the_upload_is_resent(make, fake):
    fake.script(*PREDICT, error(503, "overloaded", "queue full", retry_after=2))
    client = make(model="MobileNetV2", retry=no_jitter())

    answer = await client.predict(JPEG)

    assert answer.results[0].filename == "image-0.jpg"
    assert client.sleeps == [2.0]
    first, second = fake.requests
    assert [p.content for p in parts(first)] == [p.content for p in parts(second)] == [JPEG]


async def test_overload_that_lasts_raises_after_the_last_retry(make, fake):
    fake.script(*PREDICT, *[error(503, "overloaded", "queue full", retry_after=1)] * 4)
    client = make(model="MobileNetV2", retry=no_jitter(max_retries=3))

    with pytest.raises(Overloaded) as caught:
        await client.predict(JPEG)

    assert caught.value.retry_after == 1
    assert client.sleeps == [1.0, 1.0, 1.0]
    assert len(fake.requests) == 4


async def test_a_503_from_a_proxy_without_retry_after_backs_off(make, fake):
    fake.script(*PREDICT, httpx.Response(503, text="upstream down"), httpx.Response(503))
    client = make(model="MobileNetV2", retry=no_jitter(backoff=0.1))

    await client.predict(JPEG)

    assert client.sleeps == [0.1, 0.2]


async def test_a_4xx_is_never_retried(make, fake):
    fake.script(*PREDICT, error(400, "invalid_image", "not a JPEG"))
    client = make(model="MobileNetV2", retry=no_jitter(max_retries=10))

    with pytest.raises(InvalidImage):
        await client.predict(JPEG)

    assert len(fake.requests) == 1
    assert client.sleeps == []


async def test_a_refused_connection_is_retried(make, fake):
    fake.script("GET", "/healthz", httpx.ConnectError("refused"), httpx.ConnectError("refused"))
    client = make(retry=no_jitter())

    health = await client.health()

    assert health.status == "ok"
    assert client.sleeps == [0.25, 0.5]


async def test_a_read_timeout_is_not_retried_by_default(make, fake):
    fake.script(*PREDICT, httpx.ReadTimeout("slow"))
    client = make(model="MobileNetV2", retry=no_jitter())

    with pytest.raises(ClientTimeout) as caught:
        await client.predict(JPEG)

    assert caught.value.sent is True
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert len(fake.requests) == 1


async def test_a_read_timeout_is_retried_when_sent_errors_are_allowed(make, fake):
    fake.script(*PREDICT, httpx.ReadTimeout("slow"))
    client = make(model="MobileNetV2", retry=no_jitter(sent_errors=True))

    await client.predict(JPEG)

    assert len(fake.requests) == 2


async def test_retry_none_means_one_attempt(make, fake):
    fake.script(*PREDICT, error(503, "overloaded", "queue full", retry_after=1))
    client = make(model="MobileNetV2", retry=None)

    with pytest.raises(Unavailable):
        await client.predict(JPEG)

    assert len(fake.requests) == 1


async def test_predict_many_retries_each_request_on_its_own(make, fake):
    fake.script(*PREDICT, error(503, "overloaded", "queue full", retry_after=0.5))
    client = make(model="MobileNetV2", retry=no_jitter())

    answer = await client.predict_many([JPEG, JPEG + b"1", JPEG + b"22"], per_request=1)

    assert [r.predictions[0].index for r in answer.results] == [
        len(JPEG),
        len(JPEG) + 1,
        len(JPEG) + 2,
    ]
    assert client.sleeps == [0.5]
    assert len(fake.requests) == 4


async def test_a_prediction_dropped_mid_request_is_sent_again(make, fake):
    fake.script(*PREDICT, httpx.RemoteProtocolError("server disconnected without a response"))
    client = make(model="MobileNetV2", retry=no_jitter())

    answer = await client.predict(JPEG)

    assert answer.results[0].predictions
    assert len(fake.requests) == 2
    assert client.sleeps == [0.25]


async def test_a_dropped_call_that_is_not_idempotent_is_not_sent_again(make, fake):
    fake.script("POST", "/v1/classifiers/pets", httpx.ReadError("connection reset"))
    client = make(retry=no_jitter())

    with pytest.raises(TransportError) as caught:
        await client.teach("pets", {"cat": [JPEG, JPEG], "dog": [JPEG, JPEG]})

    assert caught.value.sent is True
    assert len(fake.requests) == 1


def test_rate_limited_is_retried_after_its_retry_after_only():
    limited = RateLimited("over", status_code=429, code="rate_limited", retry_after=12)
    unknown = RateLimited("over", status_code=429, code="rate_limited")

    assert no_jitter().delay(limited, 0) == 12
    assert no_jitter(max_retry_after=10).delay(limited, 0) is None
    assert no_jitter().delay(unknown, 0) is None
