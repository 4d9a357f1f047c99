"""Every error code, odd bodies and every httpx transport error become the right SDK error."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from kerasserve.schemas import ErrorCode
from kerasserve_client import errors
from kerasserve_client.errors import (
    ERROR_CLASSES,
    APIError,
    ClientTimeout,
    ConnectError,
    DeadlineExceeded,
    Forbidden,
    InvalidImage,
    InvalidRequest,
    KerasServeError,
    LayerNotFound,
    ModelNotFound,
    ModelUnavailable,
    NotFound,
    NotReady,
    Overloaded,
    RateLimited,
    RequestTimeout,
    ServerError,
    ShuttingDown,
    TooLarge,
    TooManyModels,
    TransportError,
    Unauthorized,
    Unavailable,
    UnexpectedResponse,
    api_error,
    parse_retry_after,
    transport_error,
)
from tests.unit.client.fake_server import JPEG, error

# docs/API.md: every code, its status, and the SDK class a caller catches.
CODES = [
    ("invalid_image", 400, InvalidImage),
    ("empty_file", 400, InvalidImage),
    ("unsupported_media_type", 415, InvalidImage),
    ("missing_image", 422, InvalidRequest),
    ("invalid_request", 422, InvalidRequest),
    ("features_too_large", 422, InvalidRequest),
    ("method_not_allowed", 405, InvalidRequest),
    ("unauthorized", 401, Unauthorized),
    ("forbidden", 403, Forbidden),
    ("too_many_models", 409, TooManyModels),
    ("invalid_config", 422, InvalidRequest),
    ("model_unavailable", 503, ModelUnavailable),
    ("model_not_found", 404, ModelNotFound),
    ("layer_not_found", 404, LayerNotFound),
    ("not_found", 404, NotFound),
    ("request_timeout", 408, RequestTimeout),
    ("payload_too_large", 413, TooLarge),
    ("image_too_large", 413, TooLarge),
    ("too_many_images", 413, TooLarge),
    ("inference_failed", 500, ServerError),
    ("internal_error", 500, ServerError),
    ("overloaded", 503, Overloaded),
    ("not_ready", 503, NotReady),
    ("shutting_down", 503, ShuttingDown),
    ("deadline_exceeded", 504, DeadlineExceeded),
    ("client_closed_request", 499, APIError),
    ("rate_limited", 429, RateLimited),
    ("wechat_login_failed", 400, InvalidRequest),
    ("wechat_unavailable", 503, Unavailable),
]


def test_every_error_code_has_a_class_and_a_case_here():
    assert set(ERROR_CLASSES) == set(ErrorCode)
    assert {code for code, _, _ in CODES} == {c.value for c in ErrorCode}


def test_the_docstring_tree_names_every_error_class():
    classes = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, KerasServeError)
    }
    assert classes <= set(errors.__doc__.split())


@pytest.mark.parametrize(("code", "status", "cls"), CODES, ids=[c for c, _, _ in CODES])
async def test_each_error_code_raises_its_class_with_the_servers_fields(
    make, fake, code, status, cls
):
    body_fields = {
        "retry_after": 3.0 if status == 503 else None,
        "details": [{"loc": ["query", "top_k"], "msg": "too big"}],
        "extra": {"limit": 1},
    }
    fake.script(
        "POST", "/v1/models/MobileNetV2/predict", error(status, code, "what and why", **body_fields)
    )
    client = make(model="MobileNetV2", retry=0)

    with pytest.raises(cls) as caught:
        await client.predict(JPEG)

    err = caught.value
    assert type(err) is cls
    assert isinstance(err, APIError)
    assert err.status_code == status
    assert err.code == ErrorCode(code)
    assert err.message == "what and why"
    assert err.request_id == "req-1"
    assert err.retry_after == (3.0 if status == 503 else None)
    assert err.details[0].loc == ["query", "top_k"]
    assert err.extra == {"limit": 1}
    assert str(err) == f"{status} {code}: what and why [request req-1]"


def test_overload_family_is_catchable_as_unavailable():
    assert issubclass(Overloaded, Unavailable)
    assert issubclass(NotReady, Unavailable)
    assert issubclass(ShuttingDown, Unavailable)
    assert issubclass(ModelNotFound, NotFound)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (409, TooManyModels),
        (404, NotFound),
        (408, RequestTimeout),
        (413, TooLarge),
        (415, InvalidImage),
        (429, InvalidRequest),
        (500, ServerError),
        (502, ServerError),
        (503, Unavailable),
        (504, DeadlineExceeded),
    ],
)
def test_a_body_that_is_not_ours_is_classed_by_status(status, cls):
    response = httpx.Response(
        status, text="<html>Bad Gateway</html>", headers={"x-request-id": "p1"}
    )

    err = api_error(response)

    assert type(err) is cls
    assert err.code is None
    assert err.message == "<html>Bad Gateway</html>"
    assert err.request_id == "p1"


def test_an_empty_error_body_uses_the_reason_phrase():
    err = api_error(httpx.Response(502))

    assert err.message == "Bad Gateway"


def test_a_code_newer_than_this_sdk_is_kept_as_text_with_its_message():
    body = {"code": "conflict_of_interest", "message": "later", "request_id": "r9"}
    response = httpx.Response(418, json=body)

    err = api_error(response)

    assert type(err) is InvalidRequest
    assert err.code == "conflict_of_interest"
    assert err.message == "later"
    assert err.request_id == "r9"
    assert str(err) == "418 conflict_of_interest: later [request r9]"


def test_retry_after_header_is_used_when_the_body_has_none():
    response = httpx.Response(
        503, json={"code": "overloaded", "message": "full"}, headers={"retry-after": "7"}
    )

    assert api_error(response).retry_after == 7.0


def test_retry_after_in_the_body_wins_over_the_header():
    response = httpx.Response(
        503,
        json={"code": "overloaded", "message": "full", "retry_after": 1.5},
        headers={"retry-after": "2"},
    )

    assert api_error(response).retry_after == 1.5


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("0.5", 0.5), (" 10 ", 10.0), ("-4", 0.0), ("soon", None), (None, None)],
)
def test_parse_retry_after_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date():
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)

    assert parse_retry_after(date, now=now) == pytest.approx(30.0)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0


def _leaves(cls: type[Exception]) -> list[type[Exception]]:
    subclasses = cls.__subclasses__()
    return [cls] if not subclasses else [leaf for sub in subclasses for leaf in _leaves(sub)]


@pytest.mark.parametrize("exc_class", _leaves(httpx.TransportError), ids=lambda c: c.__name__)
def test_every_httpx_transport_error_is_mapped(exc_class):
    err = transport_error(exc_class("low level"), "http://x.test")

    assert isinstance(err, TransportError)
    not_sent = {
        httpx.ConnectError: ConnectError,
        httpx.ConnectTimeout: ConnectError,
        httpx.PoolTimeout: ClientTimeout,
        httpx.WriteTimeout: ClientTimeout,
        httpx.UnsupportedProtocol: TransportError,
        httpx.LocalProtocolError: TransportError,
        httpx.ProxyError: TransportError,
    }
    if exc_class in not_sent:
        assert type(err) is not_sent[exc_class]
        assert err.sent is False
    else:
        assert err.sent is True
        assert type(err) is (ClientTimeout if exc_class is httpx.ReadTimeout else TransportError)


async def test_connection_failure_names_the_url_and_keeps_the_cause(make, fake):
    fake.script("GET", "/healthz", httpx.ConnectError("[Errno 111] Connection refused"))
    client = make(retry=0)

    with pytest.raises(ConnectError, match=r"http://kerasserve.test \(\[Errno 111\]") as caught:
        await client.health()

    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_a_success_status_with_a_foreign_body_is_unexpected(make, fake):
    fake.script("GET", "/healthz", httpx.Response(200, text="<html>router login</html>"))
    client = make()

    with pytest.raises(UnexpectedResponse, match="not a Health.*router login") as caught:
        await client.health()

    assert caught.value.status_code == 200


async def test_readyz_503_with_an_error_body_raises_not_ready(make, fake):
    fake.script("GET", "/readyz", error(503, "not_ready", "loading MobileNetV2"))
    client = make()

    with pytest.raises(NotReady, match="loading MobileNetV2"):
        await client.ready()
