"""WeChat login: a wx.login code, checked with WeChat's jscode2session, becomes a signed token."""

from __future__ import annotations

import logging
import os
import secrets
import time
from typing import TYPE_CHECKING, Any

import httpx
import jwt
from fastapi import APIRouter, Request
from pydantic import SecretStr

from kerasserve.schemas.auth import LoginToken, WeChatLogin
from kerasserve.service.errors import (
    LoginDisabled,
    RateLimited,
    Unauthorized,
    WeChatLoginFailed,
    WeChatUnavailable,
)
from kerasserve.service.http.errors import openapi_errors
from kerasserve.service.http.lean import LeanRoute
from kerasserve.service.http.ratelimit import client_address
from kerasserve.service.settings import Settings

if TYPE_CHECKING:
    from kerasserve.service.http.security import Guard

logger = logging.getLogger("kerasserve.auth")
# httpx logs every request's URL at INFO, and jscode2session's URL carries the AppSecret and
# the user's code: keep both libraries to warnings, whatever --log-level says.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

TOKEN_SECRET_ENV = "KERASSERVE_TOKEN_SECRET"
ISSUER = "kerasserve"
VERIFIED_CACHE = 10_000  # tokens remembered as verified (about 2 MB at most)
AUDIENCE = "kerasserve-predict"

router = APIRouter(prefix="/v1", tags=["auth"], route_class=LeanRoute)


def wants_chinese(request: Request) -> bool:
    """`?lang=zh-CN`, else the first language of `Accept-Language`, is Chinese."""
    asked = request.query_params.get("lang") or request.headers.get("accept-language") or ""
    return asked.split(",", 1)[0].strip().lower().startswith("zh")


def shared_token_secret(settings: Settings) -> Settings:
    """With WeChat login on and no KERASSERVE_TOKEN_SECRET, draw one key for this server and
    put it in the environment, so that every worker process it starts signs with it too."""
    if not settings.wechat_appid or settings.token_secret is not None:
        return settings
    key = secrets.token_urlsafe(48)
    os.environ[TOKEN_SECRET_ENV] = key
    logger.warning(
        "%s is not set: login tokens are signed with a random key drawn at start-up; they "
        "stop working when the server restarts (and differ between replicas). Set it to keep "
        "them valid.",
        TOKEN_SECRET_ENV,
    )
    return settings.model_copy(update={"token_secret": SecretStr(key)})


class TokenSigner:
    """Short-lived HS256 JWTs bound to an openid (PyJWT)."""

    def __init__(self, secret: str | None, ttl_s: int) -> None:
        if secret is None:
            secret = secrets.token_urlsafe(48)
            logger.warning(
                "%s is not set: login tokens are signed with a random key of this process; "
                "they die with it, and another process refuses them. Set it to keep them valid.",
                TOKEN_SECRET_ENV,
            )
        self._key = secret
        self.ttl_s = ttl_s
        self._verified: dict[str, tuple[str, float]] = {}

    def issue(self, openid: str, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims = {
            "sub": openid,
            "iat": issued,
            "exp": issued + self.ttl_s,
            "iss": ISSUER,
            "aud": AUDIENCE,
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def verify(self, token: str) -> str:
        """The openid of a valid token; `Unauthorized` saying why for any other.

        A token already verified is looked up, not decoded again: PyJWT's decode costs about
        0.2 ms here, on every prediction of a logged-in user.
        """
        known = self._verified.get(token)
        if known is not None and known[1] > time.time():
            return known[0]
        openid, expires = self._decode(token)
        if len(self._verified) >= VERIFIED_CACHE:
            del self._verified[next(iter(self._verified))]  # the oldest entry
        self._verified[token] = (openid, expires)
        return openid

    def _decode(self, token: str) -> tuple[str, float]:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized(
                "the login token has expired: log in again (POST /v1/auth/wechat with a new "
                "wx.login code)"
            ) from None
        except jwt.InvalidTokenError:
            raise Unauthorized(
                "invalid login token or API key: log in again (POST /v1/auth/wechat), or send "
                "a valid API key"
            ) from None
        return str(claims["sub"]), float(claims["exp"])


class WeChat:
    """jscode2session over httpx: a login code in, the user's openid out (never the
    session_key, which this server has no use for and never keeps or logs)."""

    def __init__(self, settings: Settings) -> None:
        assert settings.wechat_appid
        assert settings.wechat_secret is not None
        self.appid = settings.wechat_appid
        self._secret = settings.wechat_secret
        self.base = settings.wechat_api_base.rstrip("/")
        self.timeout_s = settings.wechat_timeout_s

    async def openid(self, code: str, *, chinese: bool) -> str:
        params = {
            "appid": self.appid,
            "secret": self._secret.get_secret_value(),
            "js_code": code,
            "grant_type": "authorization_code",
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.get(f"{self.base}/sns/jscode2session", params=params)
        except httpx.TimeoutException:
            raise _unavailable(
                f"WeChat did not answer within {self.timeout_s:g} s; retry shortly", chinese
            ) from None
        except httpx.HTTPError as exc:
            # The exception's text may hold the URL, and the URL the secret: name its type only.
            raise _unavailable(
                f"cannot reach WeChat at {self.base} ({type(exc).__name__}); retry shortly, "
                "and if it persists check the server's network or --wechat-api-base",
                chinese,
            ) from None
        data = _json(response)
        if data is None:
            raise _unavailable(
                f"WeChat answered HTTP {response.status_code} without a JSON body; retry shortly",
                chinese,
            )
        errcode = data.get("errcode") or 0
        openid = data.get("openid")
        if errcode == 0 and isinstance(openid, str) and openid:
            return openid
        raise _refusal(errcode, str(data.get("errmsg", "")), chinese)


def _json(response: httpx.Response) -> dict[str, Any] | None:
    # WeChat answers JSON with `Content-Type: text/plain`: parse the bytes whatever it says.
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _unavailable(message: str, chinese: bool) -> WeChatUnavailable:
    return WeChatUnavailable("微信服务暂时无法访问,请稍后再试" if chinese else message)


def _refusal(errcode: object, errmsg: str, chinese: bool) -> Exception:
    code = f"errcode {errcode}: {errmsg}" if errmsg else f"errcode {errcode}"
    extra = {"wechat_errcode": errcode}
    if errcode == 40029:
        return WeChatLoginFailed(
            "登录凭证无效,请重新登录"
            if chinese
            else f"WeChat refused the login code ({code}): call wx.login again and send the "
            "new code",
            extra=extra,
        )
    if errcode == 40163:
        return WeChatLoginFailed(
            "登录凭证已被使用,请重新登录"
            if chinese
            else f"this login code was used already ({code}): each wx.login code logs in once; "
            "call wx.login again",
            extra=extra,
        )
    if errcode == 45011:
        return RateLimited(
            "微信登录太频繁,请 60 秒后再试"
            if chinese
            else f"WeChat limits how often this user logs in ({code}): retry in 60 s",
            retry_after=60,
            extra=extra,
        )
    if errcode == -1:
        return WeChatUnavailable(
            "微信系统繁忙,请稍后再试" if chinese else f"WeChat is busy ({code}); retry shortly",
            extra=extra,
        )
    # 40013 (appid), 40125 (AppSecret), 40226 (high-risk user) and the rest: nothing the user
    # can fix by retrying; the log tells the operator which.
    logger.error("WeChat refused a login: %s", code)
    return WeChatUnavailable(
        "微信登录暂时不可用,请稍后再试"
        if chinese
        else f"WeChat refused this server's login request ({code}); if it persists, the "
        "server's --wechat-appid or KERASSERVE_WECHAT_SECRET is likely wrong: tell its operator",
        extra=extra,
    )


@router.post(
    "/auth/wechat",
    response_model=LoginToken,
    summary="Log in with a wx.login code; get a token for the predict routes",
    responses=openapi_errors(400, 404, 429, 503),
)
async def wechat_login(request: Request, body: WeChatLogin) -> LoginToken:
    """Checks the code with WeChat's `jscode2session` and answers a token bound to the user's
    openid, valid `expires_in` seconds: send it as `Authorization: Bearer <token>`. Errors
    are in Chinese for `Accept-Language: zh…` or `?lang=zh-CN`."""
    guard: Guard = request.app.state.guard
    chinese = wants_chinese(request)
    if guard.wechat is None or guard.tokens is None:
        raise LoginDisabled(
            "WeChat login is off on this server: start it with --wechat-appid APPID and the "
            "AppSecret in KERASSERVE_WECHAT_SECRET"
        )
    if guard.limiter is not None:
        # Logins spend this server's WeChat quota: count them per address.
        await guard.limiter.check(f"login:{client_address(request)}", chinese=chinese)
    openid = await guard.wechat.openid(body.code, chinese=chinese)
    return LoginToken(token=guard.tokens.issue(openid), expires_in=guard.tokens.ttl_s)
