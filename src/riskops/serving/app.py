"""The scoring service: an ASGI app (Starlette) answering for the champion of every model.

Routes (see docs/serving.md):

* ``POST /v1/models/{name}/score`` — riskops decisions (score, band, reason codes, id);
* ``POST /v1/models/{name}/invocations`` — MLflow's scoring protocol (``{"predictions": [...]}``);
* ``POST /v2/models/{name}/infer``, ``GET /v2/models/{name}``, ``/v2/models/{name}/ready``,
  ``/v2/health/live|ready``, ``GET /v2`` — the Open Inference Protocol (KServe, MLServer, Triton);
* ``GET /health/live``, ``GET /health/ready``, ``GET /metrics``, ``GET /openapi.json``,
  ``GET /v1/models``; ``POST /admin/models/{name}/reload`` (operator).

The hot path does no pandas, no MLflow call and no database round trip: keys are checked
against an in-memory map, the model is a reference taken once per request, decisions go to a
bounded in-memory queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from riskops.features.online_store import OnlineStoreUnavailable
from riskops.loopback import is_loopback
from riskops.serving.decision import DecisionBatch
from riskops.serving.decision_log import DecisionLog
from riskops.serving.decision_process import ProcessDecisionLog
from riskops.serving.keys import Caller, KeyCache
from riskops.serving.metrics import ServiceMetrics
from riskops.serving.models import ServedModels
from riskops.serving.openapi import openapi_document
from riskops.serving.protocols import ProtocolError, mlflow_records, riskops_records, v2_records
from riskops.serving.served import DeferredReasons, Outcome, ServedModel
from riskops.serving.shadow import ShadowJob, ShadowScorer
from riskops.serving.slo import SloTracker
from riskops.settings import ScoringSettings

log = logging.getLogger(__name__)
JSON = "application/json"


class Refusal(Exception):
    """A request refused with a 4xx (or 503) and a JSON body saying why."""

    def __init__(self, status: int, message: str, problems: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON, headers=headers)


class ScoringService:
    """The service's parts, wired into a Starlette app by :meth:`app`."""

    def __init__(
        self,
        *,
        settings: ScoringSettings,
        models: ServedModels,
        keys: KeyCache,
        metrics: ServiceMetrics,
        decisions: DecisionLog | ProcessDecisionLog,
        background: Sequence[Callable[[ScoringService], Any]] = (),
        slo: SloTracker | None = None,
    ) -> None:
        self.settings = settings
        self.models = models
        self.keys = keys
        self.metrics = metrics
        self.decisions = decisions
        self.background = list(background)  # coroutines started with the app (reload watchers)
        self.slo = slo  # burn rates per model (riskops.serving.slo); None: not tracked here
        self.shadow = ShadowScorer(
            self._log_outcomes,
            capacity=settings.shadow_queue,
            on_drop=lambda model: metrics.shadow_dropped.labels(model).inc(),
            on_error=lambda model: metrics.shadow_errors.labels(model).inc(),
        )
        self._tasks: list[asyncio.Task[Any]] = []

    # --- lifecycle -------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Start keys, decision log and shadow worker; load models in the background."""
        # Background threads (decision-log writer, shadow scorer, key refresh) hand the GIL
        # back to the event loop after 1 ms rather than Python's default 5 ms: a request
        # waiting behind them is what sets the tail latency.
        sys.setswitchinterval(0.001)
        collector = gc.get_threshold()
        gc.set_threshold(*self.settings.gc_thresholds)
        self.keys.start()
        self.decisions.start()
        self.shadow.start()
        self._tasks.append(asyncio.create_task(self.models.load_all()))
        for start in self.background:
            self._tasks.append(asyncio.create_task(start(self)))
        try:
            yield
        finally:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.shadow.stop()
            self.decisions.close()
            self.keys.stop()
            gc.set_threshold(*collector)

    def app(self) -> Starlette:
        """The ASGI application."""
        routes = [
            Route("/v1/models/{name}/score", self.score, methods=["POST"]),
            Route("/v1/models/{name}/invocations", self.invocations, methods=["POST"]),
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/v2", self.v2_server, methods=["GET"]),
            Route("/v2/health/live", self.live, methods=["GET"]),
            Route("/v2/health/ready", self.ready, methods=["GET"]),
            Route("/v2/models/{name}", self.v2_metadata, methods=["GET"]),
            Route("/v2/models/{name}/ready", self.v2_model_ready, methods=["GET"]),
            Route("/v2/models/{name}/infer", self.v2_infer, methods=["POST"]),
            Route("/health/live", self.live, methods=["GET"]),
            Route("/health/ready", self.ready, methods=["GET"]),
            Route("/metrics", self.metrics_endpoint, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/admin/models/{name}/reload", self.admin_reload, methods=["POST"]),
        ]
        return Starlette(routes=routes, lifespan=self.lifespan)

    # --- shared steps ----------------------------------------------------------------------
    def _caller(self, request: Request, action: str) -> Caller:
        caller = self.keys.caller(request.headers.get("authorization"))
        if caller is None:
            self.metrics.auth_failures.labels("401").inc()
            raise Refusal(401, "missing or unknown API key: send Authorization: Bearer <key>")
        if not caller.may(action):
            self.metrics.auth_failures.labels("403").inc()
            raise Refusal(403, f"{caller.name} (role {caller.role}) may not {action}")
        return caller

    def _champion(self, name: str) -> ServedModel:
        if name not in self.models.states:
            raise Refusal(404, f"no model named {name!r} is onboarded on this service")
        served = self.models.champion(name)
        if served is None:
            why = self.models.states[name].last_error.get("champion", "no champion yet")
            raise Refusal(503, f"{name} has no champion loaded: {why}")
        return served

    async def _body(self, request: Request) -> Any:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise Refusal(413, f"the body is {declared} bytes; the limit is {limit}")
        if declared is not None and declared.isdigit():
            body = await request.body()  # bounded by the declared length checked above
            if len(body) > limit:
                raise Refusal(413, f"the body exceeds the limit of {limit} bytes")
            return self._parse(body)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Refusal(413, f"the body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return self._parse(b"".join(chunks))

    @staticmethod
    def _parse(body: bytes) -> Any:
        if not body:
            raise Refusal(400, "empty body: send a JSON document")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise Refusal(400, f"malformed JSON: {error}") from None

    def _validated(
        self, served: ServedModel, records: list[Any], prefix: bool
    ) -> list[dict[str, Any]]:
        if not records:
            raise Refusal(422, "no records to score")
        if len(records) > self.settings.max_batch_records:
            raise Refusal(
                413,
                f"{len(records)} records; at most {self.settings.max_batch_records} per request",
            )
        out, problems = [], []
        for i, record in enumerate(records):
            clean, found = served.schema.check(record, f"records[{i}]." if prefix else "")
            out.append(clean)
            problems.extend(found)
        if problems:
            for problem in problems:
                field = problem.field.rsplit(".", 1)[-1]
                label = field if field in served.schema.fields else "(other)"
                self.metrics.validation_failures.labels(served.name, label).inc()
            raise Refusal(
                422,
                f"{len(problems)} problem(s) in the request for {served.name}",
                [p.to_dict() for p in problems[:100]],
            )
        return out

    def _log_outcomes(
        self,
        served: ServedModel,
        outcomes: list[Outcome],
        latency_ms: float,
        endpoint: str,
        request_id: str | None,
        records: list[dict[str, Any]] | None = None,
        deferred: DeferredReasons | None = None,
    ) -> None:
        m = self.metrics
        name, version = served.name, served.version
        m.child(m.records, name, version, served.role).inc(len(outcomes))
        champion = served.role == "champion"
        if champion:
            scores = m.child(m.scores, name, version)
            for outcome in outcomes:
                scores.observe(outcome.score)
                m.child(m.decisions, name, version, outcome.band).inc()
                for feature in outcome.row.unseen:
                    m.child(m.unseen, name, feature).inc()
        # One columnar batch per request; the log takes the lists as they are (no copies).
        self.decisions.submit(
            DecisionBatch(
                model=name,
                version=version,
                role="champion" if champion else "shadow",
                decided_at=dt.datetime.now(dt.UTC),
                decision_ids=[o.decision_id for o in outcomes],
                entities=[o.row.entity for o in outcomes],
                input_sha256=[o.input_sha256 for o in outcomes],
                features=[o.row.features for o in outcomes],
                scores=[o.score for o in outcomes],
                bands=[o.band for o in outcomes],
                reason_codes=[[r.to_dict() for r in o.reasons or ()] for o in outcomes],
                latency_ms=latency_ms,
                endpoint=endpoint,
                request_id=request_id,
                inputs=records if served.input_fields else None,
                input_fields=served.input_fields,
                deferred=deferred,
            )
        )  # a refused submit is counted by the log's on_drop (riskops_decision_log_dropped_total)
        m.log_depth.set(self.decisions.depth())

    def _decide(
        self,
        served: ServedModel,
        records: list[dict[str, Any]],
        raw: list[Any],
        endpoint: str,
        started: float,
        *,
        explain: bool = False,
        reasons: bool = True,
        request_id: str | None = None,
    ) -> list[Outcome]:
        deferred = None
        if reasons:
            outcomes = served.decide(records, raw, explain=explain)
        else:  # the answer carries no reasons: the decision-log writer computes them
            outcomes, deferred = served.decide_deferred(records, raw)
        latency_ms = (time.perf_counter() - started) * 1000.0
        self._log_outcomes(served, outcomes, latency_ms, endpoint, request_id, records, deferred)
        challenger = self.models.challenger(served.name)
        if challenger is not None:
            self.shadow.submit(ShadowJob(challenger, records, raw, endpoint, request_id))
        return outcomes

    async def _handle(self, request: Request, endpoint: str, work: Callable[[], Any]) -> Response:
        name = request.path_params.get("name", "")
        label = name if name in self.models.states else "(unknown)"
        started = time.perf_counter()
        version = ""
        try:
            response, version = await work()
        except Refusal as refusal:
            body: dict[str, Any] = {"error": refusal.message}
            if refusal.problems is not None:
                body["problems"] = refusal.problems
            headers = {"WWW-Authenticate": "Bearer"} if refusal.status == 401 else None
            response = _json(body, refusal.status, headers)
        except ProtocolError as error:
            response = _json({"error": str(error)}, error.status)
        except OnlineStoreUnavailable as error:  # Redis down: no features, so no decision
            self.metrics.errors.labels(label, endpoint).inc()
            log.error("scoring: %s on %s %s", error, endpoint, name)
            response = _json({"error": f"{error}; retry later"}, 503, {"Retry-After": "5"})
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception("scoring: internal error %s on %s %s", error_id, endpoint, name)
            self.metrics.errors.labels(label, endpoint).inc()
            response = _json(
                {"error": f"internal error {error_id}; the service log has the details"}, 500
            )
        m = self.metrics
        m.child(m.requests, label, endpoint, str(response.status_code)).inc()
        elapsed = time.perf_counter() - started
        if version:
            m.child(m.latency, label, version, endpoint).observe(elapsed)
        if self.slo is not None:
            self.slo.observe(label, response.status_code, elapsed)
        return response

    # --- riskops protocol ------------------------------------------------------------------
    async def score(self, request: Request) -> Response:
        """Decisions with reason codes for refer and decline (all with ?explain=true)."""

        async def work() -> tuple[Response, str]:
            started = time.perf_counter()
            self._caller(request, "model.score")
            served = self._champion(request.path_params["name"])
            body = await self._body(request)
            records, batch = riskops_records(body)
            clean = self._validated(served, records, batch)
            explain = request.query_params.get("explain", "").lower() in ("1", "true", "yes")
            outcomes = self._decide(served, clean, records, "score", started, explain=explain)
            decisions = [_decision_json(served, o) for o in outcomes]
            payload: Any = (
                {"model": served.name, "version": served.version, "decisions": decisions}
                if batch
                else decisions[0]
            )
            return _json(payload), served.version

        return await self._handle(request, "score", work)

    async def invocations(self, request: Request) -> Response:
        """MLflow's scoring protocol: ``{"predictions": [probability, ...]}``."""

        async def work() -> tuple[Response, str]:
            started = time.perf_counter()
            self._caller(request, "model.score")
            served = self._champion(request.path_params["name"])
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype not in ("application/json", ""):
                raise Refusal(
                    415, f"content type {ctype!r} is not supported; send application/json"
                )
            records = mlflow_records(await self._body(request))
            clean = self._validated(served, records, True)
            outcomes = self._decide(served, clean, records, "invocations", started, reasons=False)
            return _json({"predictions": [o.score for o in outcomes]}), served.version

        return await self._handle(request, "invocations", work)

    # --- Open Inference Protocol (V2) ------------------------------------------------------
    async def v2_infer(self, request: Request) -> Response:
        """V2 inference: outputs ``probability`` (FP64), ``band`` and ``decision_id`` (BYTES)."""

        async def work() -> tuple[Response, str]:
            started = time.perf_counter()
            self._caller(request, "model.score")
            served = self._champion(request.path_params["name"])
            body = await self._body(request)
            records, request_id = v2_records(body, list(served.schema.fields))
            clean = self._validated(served, records, True)
            outcomes = self._decide(
                served, clean, records, "v2", started, reasons=False, request_id=request_id
            )
            n = len(outcomes)
            payload = {
                "model_name": served.name,
                "model_version": served.version,
                "id": request_id or uuid.uuid4().hex,
                "parameters": {},
                "outputs": [
                    {"name": "probability", "shape": [n, 1], "datatype": "FP64",
                     "data": [o.score for o in outcomes]},
                    {"name": "band", "shape": [n, 1], "datatype": "BYTES",
                     "data": [o.band for o in outcomes]},
                    {"name": "decision_id", "shape": [n, 1], "datatype": "BYTES",
                     "data": [o.decision_id for o in outcomes]},
                ],
            }  # fmt: skip
            return _json(payload), served.version

        return await self._handle(request, "v2", work)

    async def v2_metadata(self, request: Request) -> Response:
        """V2 model metadata: name, versions, platform, inputs and outputs."""
        try:
            served = self._champion(request.path_params["name"])
        except Refusal as refusal:
            return _json({"error": refusal.message}, refusal.status)
        v2type = {"number": "FP64", "category": "BYTES", "id": "BYTES", "timestamp": "BYTES"}
        return _json(
            {
                "name": served.name,
                "versions": [served.version],
                "platform": "riskops",
                "inputs": [
                    {"name": f.name, "datatype": v2type[f.kind], "shape": [-1, 1]}
                    for f in served.schema.fields.values()
                ],
                "outputs": [
                    {"name": "probability", "datatype": "FP64", "shape": [-1, 1]},
                    {"name": "band", "datatype": "BYTES", "shape": [-1, 1]},
                    {"name": "decision_id", "datatype": "BYTES", "shape": [-1, 1]},
                ],
            }
        )

    async def v2_model_ready(self, request: Request) -> Response:
        """200 when the model's champion is loaded, else 503."""
        ready = self.models.champion(request.path_params["name"]) is not None
        return _json({"name": request.path_params["name"], "ready": ready}, 200 if ready else 503)

    async def v2_server(self, request: Request) -> Response:
        """V2 server metadata."""
        from riskops import __version__

        return _json({"name": "riskops-scoring", "version": __version__, "extensions": []})

    # --- health, metrics, documents --------------------------------------------------------
    async def live(self, request: Request) -> Response:
        """The process answers."""
        return _json({"live": True})

    async def ready(self, request: Request) -> Response:
        """200 only when every model with a champion in the registry serves it, warm."""
        if self.models.ready():
            return _json({"ready": True, "models": self._served_versions()})
        return _json(
            {
                "ready": False,
                "waiting_for": self.models.not_ready(),
                "started": self.models.started,
            },
            503,
        )

    def _served_versions(self) -> dict[str, dict[str, str | None]]:
        return {
            name: {
                "champion": s.champion.version if s.champion else None,
                "challenger": s.challenger.version if s.challenger else None,
            }
            for name, s in self.models.states.items()
        }

    async def metrics_endpoint(self, request: Request) -> Response:
        """Prometheus exposition: open on loopback, otherwise a key is needed."""
        if self.settings.metrics_require_key or not is_loopback(request):
            if self.keys.caller(request.headers.get("authorization")) is None:
                self.metrics.auth_failures.labels("401").inc()
                return _json({"error": "/metrics needs an API key off the loopback"}, 401,
                             {"WWW-Authenticate": "Bearer"})  # fmt: skip
        self.metrics.log_depth.set(self.decisions.depth())
        return Response(
            self.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    async def list_models(self, request: Request) -> Response:
        """What is served, with load errors."""
        try:
            self._caller(request, "model.score")
        except Refusal as refusal:
            return _json({"error": refusal.message}, refusal.status)
        out = []
        for name, state in self.models.states.items():
            out.append(
                {
                    "name": name,
                    "champion": state.champion.describe() if state.champion else None,
                    "challenger": state.challenger.describe() if state.challenger else None,
                    "errors": state.last_error,
                }
            )
        return _json({"models": out})

    async def openapi(self, request: Request) -> Response:
        """OpenAPI 3.1 document with one request schema per served model, from its spec."""
        served = [s.champion for s in self.models.states.values() if s.champion is not None]
        return _json(openapi_document(served))

    async def admin_reload(self, request: Request) -> Response:
        """Reload a model from the registry now (operator)."""
        try:
            caller = self._caller(request, "champion.rollback")
            name = request.path_params["name"]
            if name not in self.models.states:
                raise Refusal(404, f"no model named {name!r} is onboarded on this service")
        except Refusal as refusal:
            return _json({"error": refusal.message}, refusal.status)
        log.info("scoring: %s asked to reload %s", caller.name, name)
        await self.models.reload(name, force=True)
        state = self.models.states[name]
        return _json(
            {
                "name": name,
                "champion": state.champion.version if state.champion else None,
                "challenger": state.challenger.version if state.challenger else None,
                "errors": state.last_error,
            }
        )


def _decision_json(served: ServedModel, outcome: Outcome) -> dict[str, Any]:
    out: dict[str, Any] = {
        "decision_id": outcome.decision_id,
        "model": served.name,
        "version": served.version,
        "score": outcome.score,
        "band": outcome.band,
    }
    if outcome.reasons is not None:
        out["reasons"] = [r.text for r in outcome.reasons]
        out["reason_codes"] = [r.to_dict() for r in outcome.reasons]
    if outcome.row.unseen:
        out["unseen_categories"] = list(outcome.row.unseen)
    return out
