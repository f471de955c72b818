"""The bare floor: a minimal Starlette endpoint around ``booster.predict``, nothing else.

    python benchmarks/servebench/floor.py --booster booster.txt --port 8000

``POST /invocations`` takes ``{"dataframe_records": [{feature: value, ...}]}`` (the same body as
the riskops score-only path) and answers ``{"predictions": [p, ...]}``. No validation, no
logging, no auth: the least a Python service can do per request, served by uvicorn with one
worker on uvloop and httptools.
"""

from __future__ import annotations

import argparse

import lightgbm
import numpy as np
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def build_app(booster: lightgbm.Booster) -> Starlette:
    """The floor's ASGI app for ``booster`` (features taken in the booster's order)."""
    names = booster.feature_name()

    async def invocations(request: Request) -> Response:
        records = orjson.loads(await request.body())["dataframe_records"]
        matrix = np.array([[record[n] for n in names] for record in records], dtype=np.float64)
        scores = booster.predict(matrix, num_threads=1)
        return Response(
            orjson.dumps({"predictions": scores.tolist()}), media_type="application/json"
        )

    async def health(_request: Request) -> Response:
        return Response(b"ok")

    return Starlette(
        routes=[Route("/invocations", invocations, methods=["POST"]), Route("/health", health)]
    )


def main() -> None:
    """Serve the floor on 127.0.0.1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--booster", required=True, help="LightGBM model file (booster.txt)")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = build_app(lightgbm.Booster(model_file=args.booster))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
