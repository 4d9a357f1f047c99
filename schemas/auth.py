"""WeChat login: the wx.login code a mini-program sends, and the token it gets back."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WeChatLogin(BaseModel):
    """`POST /v1/auth/wechat`: the code `wx.login()` just gave the mini-program."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        min_length=1,
        max_length=256,
        description="The `code` of `wx.login()`; valid for 5 minutes, once.",
        examples=["0a3Xk2Ga1ZgBfK0s6zHa1kJYyq3Xk2GG"],
    )


class LoginToken(BaseModel):
    """A signed token bound to the user's openid; send it as `Authorization: Bearer <token>`."""

    token: str = Field(description="Send as `Authorization: Bearer <token>`.")
    expires_in: int = Field(description="Seconds it stays valid; log in again after (or on 401).")
