"""The ceiling: a bare Starlette app under uvicorn, with openxp's server flags.

GET / answers a small JSON object; POST / parses a JSON body and answers with
its size. Nothing else (no middleware, no database): what an ASGI endpoint on
this machine can do at best, the yardstick for openxp's overheads.

python -m bench.ceiling --port P
"""

from __future__ import annotations

import argparse
import json

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def get(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def post(request: Request) -> JSONResponse:
    body = json.loads(await request.body())
    return JSONResponse({"received": len(body)})


app = Starlette(routes=[Route("/", get, methods=["GET"]), Route("/", post, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The same flags as ``openxp serve`` (openxp/cli.py _run_server).
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        log_config=None,
    )


if __name__ == "__main__":
    main()
