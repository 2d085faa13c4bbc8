"""The ingest anchor: a bare aiohttp handler that parses the report body with orjson and answers 204.

    python -m bench.bare PORT

Nothing else: no authentication, no validation, no store, no rules. It is the ceiling an aiohttp
service on this core can reach for the same requests.
"""

from __future__ import annotations

import sys

import orjson
from aiohttp import web


async def handle(request: web.Request) -> web.Response:
    orjson.loads(await request.read())
    return web.Response(status=204)


def main() -> None:
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/api/v1/reports", handle)
    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


async def health(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


if __name__ == "__main__":
    main()
