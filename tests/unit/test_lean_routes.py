"""`LeanRoute` answers exactly what FastAPI's own handler answers, from the same declarations."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from kerasserve.service.http import lean
from kerasserve.service.http.lean import LeanRoute

bearer = HTTPBearer(auto_error=False)
api_key = APIKeyHeader(name="X-API-Key", auto_error=False)


calls: list[str] = []


class Thing(BaseModel):
    n: int


async def shared(request: Request) -> str:
    calls.append("shared")
    return request.url.path


async def guard(
    request: Request,
    path: Annotated[str, Depends(shared)],
    credentials: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
    key: str | None = Security(api_key),
) -> None:
    calls.append("guard")
    request.state.who = key or (credentials.credentials if credentials else None)


def build(route_class: type[APIRoute]) -> tuple[FastAPI, list[str]]:
    """One app whose routes use `route_class`; `calls` records each dependency call."""
    calls.clear()
    router = APIRouter(prefix="/v1", dependencies=[Depends(guard)], route_class=route_class)

    @router.get("/items/{name}")
    async def item(
        request: Request,
        name: Annotated[str, Path(min_length=2, max_length=5)],
        via: Annotated[str, Depends(shared)],
        top_k: Annotated[int, Query(ge=1, le=10)] = 5,
        lang: Annotated[str | None, Query(max_length=3)] = None,
        accept_language: Annotated[str | None, Header()] = None,
    ) -> Response:
        body = {
            "name": name,
            "top_k": top_k,
            "lang": lang,
            "accept_language": accept_language,
            "who": request.state.who,
            "via": via,
        }
        return JSONResponse(body)

    @router.get("/model")
    async def model() -> Thing:  # not a Response: FastAPI's handler serialises it
        return Thing(n=1)

    app = FastAPI()
    app.include_router(router)
    return app, calls


async def answer(app: FastAPI, url: str, **headers: str) -> tuple[int, Any]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(url, headers=headers)
    return response.status_code, response.json()


CASES = [
    ("/v1/items/abc", {}),
    ("/v1/items/abc?top_k=3&lang=zh", {"Accept-Language": "zh-CN", "X-API-Key": "k1"}),
    ("/v1/items/abc", {"Authorization": "Bearer t0"}),
    ("/v1/items/a", {}),  # path too short
    ("/v1/items/abc?top_k=0", {}),  # below ge
    ("/v1/items/abc?top_k=x&lang=toolong", {}),  # two errors at once
    ("/v1/model", {}),
]


@pytest.mark.parametrize(("url", "headers"), CASES)
async def test_lean_answers_what_fastapi_answers(url: str, headers: dict[str, str]) -> None:
    standard, _ = build(APIRoute)
    leaned, _ = build(LeanRoute)
    assert await answer(leaned, url, **headers) == await answer(standard, url, **headers)


async def test_a_dependency_used_twice_runs_once_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    solved: list[str] = []
    original = lean._Plan.solve

    async def spy(self: lean._Plan, *args: Any, **kwargs: Any) -> dict[str, Any]:
        solved.append(getattr(self.call, "__name__", type(self.call).__name__))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(lean._Plan, "solve", spy)
    app, calls = build(LeanRoute)
    assert (await answer(app, "/v1/items/abc"))[0] == 200
    assert "item" in solved  # the lean plan ran, not FastAPI's solver
    assert calls == ["shared", "guard"]


async def test_dependency_overrides_go_through_fastapi() -> None:
    app, _ = build(LeanRoute)

    async def nobody(request: Request) -> None:
        request.state.who = "override"

    app.dependency_overrides[guard] = nobody
    status, body = await answer(app, "/v1/items/abc", **{"X-API-Key": "k1"})
    assert (status, body["who"]) == (200, "override")


def test_routes_that_return_models_or_read_bodies_keep_fastapis_handler() -> None:
    router = APIRouter(route_class=LeanRoute)

    @router.post("/body")
    async def with_body(body: Thing) -> Response:
        return Response()

    @router.get("/model")
    async def with_model() -> Thing:
        return Thing(n=1)

    @router.get("/plain")
    async def plain(request: Request) -> Response:
        return Response()

    handlers = {r.path: r.get_route_handler() for r in router.routes if isinstance(r, APIRoute)}
    assert not getattr(handlers["/body"], "lean", False)
    assert not getattr(handlers["/model"], "lean", False)
    assert getattr(handlers["/plain"], "lean", False)


def test_kerasserve_inference_routes_are_lean() -> None:
    from kerasserve.service.http.routes import api, ops
    from kerasserve.service.http.v2 import router as v2_router

    lean_paths = {
        r.path
        for router in (api, ops, v2_router)
        for r in router.routes
        if isinstance(r, APIRoute) and getattr(r.get_route_handler(), "lean", False)
    }
    assert {
        "/v1/models/{model}/predict",
        "/v1/models/{model}/versions/{version}/predict",
        "/predict",
        "/v2/models/{model}/infer",
        "/v2/models/{model}/versions/{version}/infer",
    } <= lean_paths
