"""The Starlette application: Mastodon API routes, admin routes, media files, status pages."""

from __future__ import annotations

import base64
import html
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from social_pipelines.sandbox.admin import AdminApi
from social_pipelines.sandbox.api import MastodonApi
from social_pipelines.sandbox.ids import parse_id
from social_pipelines.sandbox.pipeline import ApiPipeline, Handler, base_url, error
from social_pipelines.sandbox.state import Sandbox, SandboxConfig

# A 1x1 grey PNG for avatars and headers, like Mastodon's missing.png.
MISSING_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNoAAAAggCBd81ytgAAAABJRU5ErkJggg=="
)

Endpoint = Callable[[Request], Awaitable[Response]]


class StripTrailingSlash:
    """Rails routes ignore a trailing slash (Mastodon.py asks for `/api/v2/instance/`);
    a redirect instead would turn a POST into a GET in some clients."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/"}
            if "raw_path" in scope:
                scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


def create_app(config: SandboxConfig) -> Starlette:
    """The app and its state; the caller closes `app.state.sandbox` when done."""
    sandbox = Sandbox(config)
    pipeline = ApiPipeline(sandbox)
    api = MastodonApi(sandbox)
    admin = AdminApi(sandbox)

    def api_route(
        path: str,
        handler: Handler,
        methods: list[str],
        *,
        public: bool = False,
        idempotent: bool = False,
        checks_token: bool = False,
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            return await pipeline.run(
                request, handler, public=public, idempotent=idempotent, checks_token=checks_token
            )

        return Route(path, endpoint, methods=methods)

    async def media_file(request: Request) -> Response:
        media_id = parse_id(request.path_params["id"])
        found = None if media_id is None else sandbox.statuses.media_bytes(media_id)
        if found is None:
            return Response(status_code=404)
        mime, data = found
        return Response(data, media_type=mime, headers={"Cache-Control": "public, max-age=3600"})

    async def missing_png(request: Request) -> Response:
        return Response(MISSING_PNG, media_type="image/png")

    async def status_page(request: Request) -> Response:
        """A minimal public page, so the `url` of a status opens in a browser."""
        status_id = parse_id(request.path_params["id"])
        record = None if status_id is None else sandbox.statuses.get(status_id)
        account = sandbox.accounts.by_id(record.account_id) if record else None
        if record is None or account is None or account.username != request.path_params["user"]:
            return HTMLResponse("<h1>Not found</h1>", status_code=404)
        entity = sandbox.entities.status(record, base_url(request), None)
        page = (
            f"<!doctype html><title>{html.escape(account.display_name)}</title>"
            f"<p><strong>{html.escape(account.display_name)}</strong> @{account.username}"
            f" &middot; {entity['created_at']}</p>{entity['content']}"
        )
        return HTMLResponse(page)

    async def not_found(request: Request) -> Response:
        return error(404, "Record not found")

    routes: list[BaseRoute] = [
        api_route("/api/v2/instance", api.instance_v2, ["GET"], public=True),
        api_route("/api/v1/instance", api.instance_v1, ["GET"], public=True),
        api_route("/api/v1/accounts/verify_credentials", api.verify_credentials, ["GET"]),
        api_route("/api/v1/accounts/lookup", api.lookup_account, ["GET"]),
        api_route("/api/v1/accounts/{id}", api.account, ["GET"]),
        api_route("/api/v1/accounts/{id}/statuses", api.account_statuses, ["GET"]),
        api_route("/api/v1/statuses", api.create_status, ["POST"], idempotent=True),
        api_route("/api/v1/statuses/{id}", api.status, ["GET"]),
        api_route("/api/v2/media", api.upload_media, ["POST"]),
        api_route("/api/v1/media", api.upload_media, ["POST"]),
        api_route("/api/v1/media/{id}", api.media, ["GET"]),
        api_route("/api/v2/search", api.search, ["GET"]),
        api_route(
            "/api/v1/timelines/tag/{hashtag}",
            api.tag_timeline,
            ["GET"],
            public=True,
            checks_token=True,
        ),
        api_route("/api/v1/notifications", api.notifications, ["GET"]),
        Route("/_sandbox/health", admin.health, methods=["GET"]),
        Route("/_sandbox/seed", admin.seed, methods=["POST"]),
        Route("/_sandbox/posted", admin.posted, methods=["GET"]),
        Route("/_sandbox/stats", admin.stats, methods=["GET"]),
        Route("/_sandbox/faults", admin.faults, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/rate-limit", admin.rate_limit, methods=["GET", "POST"]),
        Route("/_sandbox/idempotency", admin.idempotency, methods=["GET", "POST"]),
        Route("/_sandbox/media", admin.media, methods=["GET", "POST"]),
        Route("/_sandbox/accounts", admin.accounts, methods=["GET", "POST"]),
        Route("/_sandbox/reset", admin.reset, methods=["POST"]),
        Route("/system/media_attachments/files/{id}/{variant}", media_file, methods=["GET"]),
        Route("/avatars/original/missing.png", missing_png, methods=["GET"]),
        Route("/headers/original/missing.png", missing_png, methods=["GET"]),
        Route("/@{user}/{id}", status_page, methods=["GET"]),
        Route("/api/{rest:path}", not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(StripTrailingSlash)])
    app.state.sandbox = sandbox
    return app
