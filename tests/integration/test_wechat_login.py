"""WeChat login against a stand-in jscode2session on 127.0.0.1: tokens that predict, clear errors."""

from __future__ import annotations

import asyncio
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from PIL import Image

from tests.support.live_server import LiveServer, free_port, live_server

APPID = "wx0123456789abcdef"
APP_SECRET = "app-secret-that-must-never-be-logged"
SESSION_KEY = "session-key-that-must-never-be-logged"
TOKEN_SECRET = "token-secret-for-tests-0123456789-abcdefgh"
PREDICT = "/v1/models/MobileNetV2/predict"
LOGIN = "/v1/auth/wechat"


class StandIn(ThreadingHTTPServer):
    """jscode2session as WeChat answers it (JSON as text/plain): `ok-<openid>` logs in once,
    `bad` is 40029, `limited` 45011, `busy` -1, `slow` answers after 3 s, `html` is no JSON."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.used: set[str] = set()
        self.seen: list[dict[str, list[str]]] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, object]:
        self.seen.append(query)
        if path != "/sns/jscode2session":
            return 404, {"errcode": 404, "errmsg": "no such api"}
        if query.get("appid") != [APPID] or query.get("secret") != [APP_SECRET]:
            return 200, {"errcode": 40125, "errmsg": "invalid appsecret"}
        if query.get("grant_type") != ["authorization_code"]:
            return 200, {"errcode": 40002, "errmsg": "invalid grant_type"}
        code = query.get("js_code", [""])[0]
        if code.startswith("ok-"):
            if code in self.used:
                return 200, {"errcode": 40163, "errmsg": "code been used, rid: 1"}
            self.used.add(code)
            return 200, {"openid": code[3:], "session_key": SESSION_KEY}
        if code == "limited":
            return 200, {"errcode": 45011, "errmsg": "api minute-quota reach limit"}
        if code == "busy":
            return 200, {"errcode": -1, "errmsg": "system error"}
        if code == "slow":
            time.sleep(3)
            return 200, {"errcode": -1, "errmsg": "too late"}
        if code == "html":
            return 502, "<html>bad gateway</html>"
        return 200, {"errcode": 40029, "errmsg": "invalid code, rid: 2"}


class Handler(BaseHTTPRequestHandler):
    server: StandIn

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urlsplit(self.path)
        status, body = self.server.answer(url.path, parse_qs(url.query))
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def wechat() -> Iterator[StandIn]:
    server = StandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def server(wechat: StandIn) -> Iterator[LiveServer]:
    with live_server(
        "--model", "MobileNetV2", "--weights", "none", "--max-batch-size", "1",
        "--wechat-appid", APPID, "--wechat-api-base", wechat.base,
        "--rate-limit", "20/minute", "--log-level", "debug",
        env={
            "KERASSERVE_WECHAT_SECRET": APP_SECRET,
            "KERASSERVE_TOKEN_SECRET": TOKEN_SECRET,
            "KERASSERVE_WECHAT_TIMEOUT_S": "1",
        },
    ) as srv:  # fmt: skip
        yield srv


def _jpeg() -> dict[str, tuple[str, bytes, str]]:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 80, 20)).save(out, format="JPEG")
    return {"image": ("a.jpg", out.getvalue(), "image/jpeg")}


def login(server: LiveServer, code: str, **kwargs) -> httpx.Response:
    return httpx.post(server.base_url + LOGIN, json={"code": code}, timeout=30, **kwargs)


def test_a_login_yields_a_token_that_predicts(server, wechat):
    r = login(server, "ok-user-a")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"token", "expires_in"}
    assert body["expires_in"] == 7200
    claims = jwt.decode(body["token"], TOKEN_SECRET, algorithms=["HS256"], audience=None,
                        options={"verify_aud": False})  # fmt: skip
    assert claims["sub"] == "user-a"
    assert claims["exp"] - claims["iat"] == 7200
    assert SESSION_KEY not in r.text
    assert wechat.seen[-1]["appid"] == [APPID]
    assert wechat.seen[-1]["js_code"] == ["ok-user-a"]

    predicted = httpx.post(
        server.base_url + PREDICT,
        files=_jpeg(),
        headers={"Authorization": f"Bearer {body['token']}"},
        timeout=60,
    )
    assert predicted.status_code == 200, predicted.text
    assert predicted.json()["results"][0]["predictions"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="none"),
        pytest.param({"Authorization": "Bearer not-a-token"}, id="garbage"),
        pytest.param({"X-API-Key": "anything"}, id="api-key-when-none-configured"),
        pytest.param(
            {
                "Authorization": "Bearer "
                + jwt.encode(
                    {
                        "sub": "x",
                        "iat": 1,
                        "exp": 2**40,
                        "iss": "kerasserve",
                        "aud": "kerasserve-predict",
                    },
                    "another-secret-of-at-least-32-bytes!!",
                    "HS256",
                )
            },
            id="signed-with-another-key",
        ),  # fmt: skip
    ],
)
def test_predict_needs_a_valid_token_once_login_is_on(server, headers):
    r = httpx.post(server.base_url + PREDICT, files=_jpeg(), headers=headers, timeout=60)
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "unauthorized"
    assert "/v1/auth/wechat" in r.json()["message"]


def test_an_expired_token_says_log_in_again(server):
    now = int(time.time())
    token = jwt.encode(
        {"sub": "u", "iat": now - 8000, "exp": now - 800, "iss": "kerasserve",
         "aud": "kerasserve-predict"}, TOKEN_SECRET, "HS256",
    )  # fmt: skip
    r = httpx.post(
        server.base_url + PREDICT,
        files=_jpeg(),
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert r.status_code == 401
    assert "expired" in r.json()["message"]


def test_a_bad_code_and_a_reused_code_are_refused_clearly(server):
    bad = login(server, "not-a-real-code")
    assert bad.status_code == 400
    assert bad.json()["code"] == "wechat_login_failed"
    assert "40029" in bad.json()["message"]
    assert "wx.login" in bad.json()["message"]
    assert bad.json()["extra"] == {"wechat_errcode": 40029}

    assert login(server, "ok-user-b").status_code == 200
    again = login(server, "ok-user-b")
    assert again.status_code == 400
    assert again.json()["code"] == "wechat_login_failed"
    assert "used already" in again.json()["message"]


def test_errors_are_in_chinese_when_asked(server):
    by_header = login(server, "ok-user-b", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert by_header.status_code == 400
    assert by_header.json()["message"] == "登录凭证已被使用,请重新登录"
    by_query = httpx.post(
        server.base_url + LOGIN, params={"lang": "zh-CN"}, json={"code": "bad"}, timeout=30
    )
    assert by_query.json()["message"] == "登录凭证无效,请重新登录"
    english = login(server, "bad", headers={"Accept-Language": "en-US,zh;q=0.5"})
    assert english.json()["message"].startswith("WeChat refused the login code")


@pytest.mark.parametrize(
    ("code", "status", "error", "retry_after"),
    [
        ("limited", 429, "rate_limited", "60"),
        ("busy", 503, "wechat_unavailable", "5"),
        ("slow", 503, "wechat_unavailable", "5"),
        ("html", 503, "wechat_unavailable", "5"),
    ],
)
def test_wechat_trouble_becomes_a_clear_answer(server, code, status, error, retry_after):
    r = login(server, code)
    assert r.status_code == status, r.text
    assert r.json()["code"] == error
    assert r.headers["retry-after"] == retry_after
    assert r.json()["retry_after"] == float(retry_after)
    zh = login(server, code, headers={"Accept-Language": "zh"})
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh.json()["message"])


def test_unreachable_wechat_is_a_503():
    """No server at all behind --wechat-api-base (checked on the class: no model to start)."""
    from kerasserve.service.errors import WeChatUnavailable
    from kerasserve.service.http.auth import WeChat
    from kerasserve.service.settings import Settings

    settings = Settings(
        wechat_appid=APPID,
        wechat_secret=APP_SECRET,
        wechat_api_base=f"http://127.0.0.1:{free_port()}",
    )
    with pytest.raises(WeChatUnavailable, match="cannot reach WeChat") as caught:
        asyncio.run(WeChat(settings).openid("ok-x", chinese=False))
    assert APP_SECRET not in caught.value.message


def test_the_token_counts_against_its_own_limit(server):
    """--rate-limit 20/minute per openid: user c's 21st prediction is refused, user d's first
    is not (logins count apart, per address)."""
    tokens = {u: login(server, f"ok-{u}").json()["token"] for u in ("user-c", "user-d")}

    def predict(user: str) -> httpx.Response:
        return httpx.post(
            server.base_url + PREDICT,
            files=_jpeg(),
            headers={"Authorization": f"Bearer {tokens[user]}"},
            timeout=60,
        )

    statuses = [predict("user-c").status_code for _ in range(21)]
    assert statuses == [200] * 20 + [429]
    assert predict("user-d").status_code == 200


def test_secrets_never_reach_the_log(server):
    """Runs last: every login above went through a server logging at DEBUG."""
    log = server.log()
    assert "ready:" in log  # the log is the server's, not an empty file
    for secret in (APP_SECRET, SESSION_KEY, TOKEN_SECRET):
        assert secret not in log


def test_one_drawn_token_key_serves_every_worker_and_no_dump_shows_a_secret(monkeypatch):
    """No KERASSERVE_TOKEN_SECRET: `serve` draws one key and puts it in the environment its
    worker processes inherit; the settings never serialise either secret."""
    from kerasserve.service.http.auth import TOKEN_SECRET_ENV, TokenSigner, shared_token_secret
    from kerasserve.service.settings import Settings

    monkeypatch.delenv(TOKEN_SECRET_ENV, raising=False)
    settings = shared_token_secret(Settings(wechat_appid=APPID, wechat_secret=APP_SECRET))
    drawn = settings.token_secret.get_secret_value()
    assert len(drawn) >= 32
    assert drawn == os.environ[TOKEN_SECRET_ENV]
    # A worker rebuilds its settings from the environment: same key, so tokens cross workers.
    worker = Settings(wechat_appid=APPID, wechat_secret=APP_SECRET)
    token = TokenSigner(drawn, 60).issue("someone")
    assert TokenSigner(worker.token_secret.get_secret_value(), 60).verify(token) == "someone"
    dump = settings.model_dump_json()
    assert APP_SECRET not in dump
    assert drawn not in dump
    with pytest.raises(ValueError, match="at least 32"):
        Settings(token_secret="short")


def test_a_remembered_token_still_expires():
    """Verified tokens are remembered (PyJWT's decode is ~0.2 ms a request), never past `exp`."""
    from kerasserve.service.errors import Unauthorized
    from kerasserve.service.http.auth import TokenSigner

    signer = TokenSigner(TOKEN_SECRET, 60)
    token = signer.issue("openid-e", now=time.time() - 59)  # one second to live
    assert signer.verify(token) == "openid-e"
    assert signer.verify(token) == "openid-e"  # from memory
    time.sleep(1.5)
    with pytest.raises(Unauthorized, match="expired"):
        signer.verify(token)
    with pytest.raises(Unauthorized, match="invalid login token"):
        signer.verify(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
