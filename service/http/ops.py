"""The operations routes: liveness, readiness (of every worker) and metrics (summed over them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from kerasserve.schemas import Health, Readiness
from kerasserve.service import __version__
from kerasserve.service.http.lean import LeanRoute
from kerasserve.service.http.state import AppState, get_state
from kerasserve.service.http.workers import refresh_gauges

State = Annotated[AppState, Depends(get_state)]

router = APIRouter(route_class=LeanRoute)


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(version=__version__)


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: every model loaded and warmed, in every worker",
    responses={503: {"model": Readiness, "description": "Not ready (loading or draining)"}},
)
async def readyz(state: State) -> Response:
    registry = state.registry
    ready = registry.ready and not state.draining
    detail = None if ready else ("draining" if state.draining else "loading")
    if ready and state.workers is not None:
        ready, detail = state.workers.all_ready()
    body = Readiness(
        ready=ready, models={e.name: e.state.value for e in registry.entries}, detail=detail
    )
    return Response(
        body.model_dump_json(), status_code=200 if ready else 503, media_type="application/json"
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(state: State) -> Response:
    refresh_gauges(state)
    if state.workers is not None:
        state.workers.statuses()  # drops the live gauges of workers that died
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
