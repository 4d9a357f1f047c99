"""Routes that run what FastAPI declares, without FastAPI's per-request dependency solver.

FastAPI analyses every parameter again on every request (whether it is a sequence, a model,
which alias it has) before validating it; on this project's predict route (path, query and
header parameters, the state, the API-key check with its two security schemes) that
generic work cost about 80 µs a request on one core in isolation, more than the rest of
the route's own Python together, and several times that under load.

`LeanRoute` reads the same declarations once, when the route is built, into a plan:
path, query and header parameters (validated by the same `ModelField`s, so errors are the
same 422 `RequestValidationError`), the `Request`, and sub-dependencies that are async
functions or security schemes (solved once per request, as FastAPI caches them). OpenAPI is
generated from the declarations, so the docs do not change. A route that declares anything
the plan does not cover (a body, cookies, background tasks, `yield` dependencies, sync
dependencies, sequence or model parameters) keeps FastAPI's own handler, and so does every
request while `app.dependency_overrides` is set (tests that override a dependency).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

logger = logging.getLogger("kerasserve.http")

try:  # FastAPI's own helpers, so aliases, defaults and errors are exactly FastAPI's
    from fastapi import routing as _routing
    from fastapi._compat import Undefined
    from fastapi._compat.shared import field_annotation_is_sequence
    from fastapi.dependencies.utils import (
        _get_param_aliases,
        _get_param_model,
        _validate_value_with_model_field,
        get_typed_return_annotation,
    )

    _HELPERS = True
except ImportError:  # pragma: no cover - a FastAPI that moved them: the standard handler
    _HELPERS = False

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

# Where each kind of parameter is read from, and its `loc` in a validation error.
_SOURCES: dict[str, Callable[[Request], Any]] = {
    "path": lambda request: request.path_params,
    "query": lambda request: request.query_params,
    "header": lambda request: request.headers,
}


@dataclass(frozen=True)
class _Param:
    name: str
    location: str
    key: str  # the name in the request (a header's with dashes)
    alias: str
    field: Any  # FastAPI's ModelField


@dataclass
class _Plan:
    """One dependant's parameters and sub-dependencies, ready to solve without analysis."""

    call: Callable[..., Any]
    use_cache: bool
    name: str | None
    request_names: tuple[str, ...]  # the `Request` (or `HTTPConnection`) parameters
    params: list[_Param] = field(default_factory=list)
    subs: list[_Plan] = field(default_factory=list)

    async def solve(
        self, request: Request, cache: dict[Any, Any], errors: list[Any]
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for sub in self.subs:
            if sub.use_cache and sub.call in cache:
                solved = cache[sub.call]
            else:
                failed = len(errors)
                sub_values = await sub.solve(request, cache, errors)
                if len(errors) > failed:
                    continue
                solved = await sub.call(**sub_values)
                cache.setdefault(sub.call, solved)
            if sub.name is not None:
                values[sub.name] = solved
        sources: dict[str, Any] = {}
        for param in self.params:
            received = sources.get(param.location)
            if received is None:
                received = sources[param.location] = _SOURCES[param.location](request)
            raw = received.get(param.key)
            value, problems = _validate_value_with_model_field(
                field=param.field,
                value=Undefined if raw is None else raw,
                values=values,
                loc=(param.location, param.alias),
            )
            if problems:
                errors.extend(problems)
            else:
                values[param.name] = value
        for name in self.request_names:
            values[name] = request
        return values


def _is_async(call: Callable[..., Any]) -> bool:
    if inspect.isasyncgenfunction(call) or inspect.isgeneratorfunction(call):
        return False
    if inspect.iscoroutinefunction(call):
        return True
    dunder = getattr(call, "__call__", None)  # noqa: B004 - a security scheme instance
    return not inspect.isfunction(call) and inspect.iscoroutinefunction(dunder)


def plan(dependant: Dependant) -> _Plan | None:
    """The dependant as a plan, or None when it declares something the plan does not cover."""
    call = dependant.call
    if (
        not _HELPERS
        or call is None
        or not _is_async(call)
        or dependant.body_params
        or dependant.cookie_params
        or dependant.websocket_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or getattr(dependant, "concurrency", None) is not None
    ):
        return None
    out = _Plan(
        call=call,
        use_cache=dependant.use_cache,
        name=dependant.name,
        request_names=tuple(
            n for n in (dependant.request_param_name, dependant.http_connection_param_name) if n
        ),
    )
    for location, fields in (
        ("path", dependant.path_params),
        ("query", dependant.query_params),
        ("header", dependant.header_params),
    ):
        for model_field in fields:
            info = model_field.field_info
            if not isinstance(info, params.Param) or _get_param_model(model_field) is not None:
                return None
            if field_annotation_is_sequence(info.annotation):
                return None
            aliases = _get_param_aliases(model_field)
            if len(aliases) != 1:
                return None
            alias, key = aliases[0]
            out.params.append(_Param(model_field.name, location, key, alias, model_field))
    for sub in dependant.dependencies:
        sub_plan = plan(sub)
        if sub_plan is None:
            return None
        out.subs.append(sub_plan)
    return out


def _answers_response(call: Callable[..., Any]) -> bool:
    """Whether the endpoint says it returns a `Response` (FastAPI serialises anything else)."""
    try:
        annotation = get_typed_return_annotation(call)
    except Exception:  # an annotation that does not resolve: let FastAPI handle the route
        return False
    return inspect.isclass(annotation) and issubclass(annotation, Response)


class LeanRoute(APIRoute):
    """An `APIRoute` whose requests are solved by a plan built once (see the module doc)."""

    def get_route_handler(self) -> Handler:
        standard = super().get_route_handler()
        effective = _effective(self)
        route_plan = plan(effective.dependant) if _answers_response(self.endpoint) else None
        if route_plan is None:
            logger.debug("%s keeps FastAPI's handler: its declarations need it", self.path)
            return standard
        endpoint = route_plan
        overrides = effective.dependency_overrides_provider

        async def handler(request: Request) -> Response:
            if overrides is not None and getattr(overrides, "dependency_overrides", None):
                return await standard(request)
            errors: list[Any] = []
            values = await endpoint.solve(request, {}, errors)
            if errors:
                raise RequestValidationError(errors)
            response: Response = await endpoint.call(**values)
            return response

        handler.lean = True  # type: ignore[attr-defined]
        return handler


def _effective(route: APIRoute) -> Any:
    """What FastAPI itself solves for `route`: while it builds the handler of a route included
    in an app, that inclusion's copy (its dependant has `include_router`'s dependencies, its
    `dependency_overrides_provider` is the app); else the route."""
    context_var = getattr(_routing, "_effective_route_context_var", None) if _HELPERS else None
    context = context_var.get() if context_var is not None else None
    if context is not None and getattr(context, "original_route", None) is route:
        return context
    return route
