"""The Mastodon client API endpoints the project uses, with Mastodon's validation and errors.

Every handler runs inside `ApiPipeline` (auth, rate limit, faults); here is only what the
endpoint itself does. Error texts are Mastodon's own, because client code and tests match
on status codes and sometimes on messages.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from social_pipelines.sandbox.content import character_count
from social_pipelines.sandbox.entities import MAX_MEDIA_ATTACHMENTS
from social_pipelines.sandbox.forms import BadRequest, Params, read_params
from social_pipelines.sandbox.ids import now_ms, parse_id
from social_pipelines.sandbox.media import DESCRIPTION_LIMIT, MediaRejected, inspect_image
from social_pipelines.sandbox.pipeline import ApiContext, error
from social_pipelines.sandbox.processing import NOT_FINISHED
from social_pipelines.sandbox.search import InvalidQuery, parse_query
from social_pipelines.sandbox.state import Sandbox
from social_pipelines.sandbox.statuses import NewStatus, Page, StatusRecord

RECORD_NOT_FOUND = "Record not found"
REPLY_NOT_FOUND = "The post you are trying to reply to does not appear to exist."
VISIBILITIES = ("public", "unlisted", "private", "direct")
DEFAULT_LIMIT = 20
MAX_LIMIT = 40
# Notifications page larger since Mastodon 4.1 (before: 15, at most 30).
NOTIFICATIONS_DEFAULT_LIMIT = 40
NOTIFICATIONS_MAX_LIMIT = 80
LOCAL_STATUS_URL_RE = re.compile(r"/@([A-Za-z0-9_]+)/(\d+)/?$")


def _limit(params: Params, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    raw = params.get("limit")
    if raw is None or not raw.strip().lstrip("-").isdigit() or len(raw) > 9:
        return default
    return max(1, min(maximum, abs(int(raw))))


def _page(params: Params, limit: int) -> Page:
    return Page(
        limit=limit,
        max_id=parse_id(params.get("max_id")),
        since_id=parse_id(params.get("since_id")),
        min_id=parse_id(params.get("min_id")),
    )


class MastodonApi:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def _visible(self, record: StatusRecord | None, ctx: ApiContext) -> StatusRecord | None:
        if record is None:
            return None
        if record.visibility in ("private", "direct") and record.account_id != ctx.viewer_id:
            return None
        return record

    # Accounts

    async def verify_credentials(self, request: Request, ctx: ApiContext) -> Response:
        assert ctx.account is not None
        entity = self.sandbox.entities.account(ctx.account, ctx.base_url, credentials=True)
        return JSONResponse(entity)

    async def account(self, request: Request, ctx: ApiContext) -> Response:
        account_id = parse_id(request.path_params["id"])
        account = None if account_id is None else self.sandbox.accounts.by_id(account_id)
        if account is None:
            return error(404, RECORD_NOT_FOUND)
        return JSONResponse(self.sandbox.entities.account(account, ctx.base_url))

    async def lookup_account(self, request: Request, ctx: ApiContext) -> Response:
        acct = (request.query_params.get("acct") or "").removeprefix("@")
        username, _, domain = acct.partition("@")
        account = None
        if domain in ("", self.sandbox.config.domain):
            account = self.sandbox.accounts.by_username(username)
        if account is None:
            return error(404, RECORD_NOT_FOUND)
        return JSONResponse(self.sandbox.entities.account(account, ctx.base_url))

    async def account_statuses(self, request: Request, ctx: ApiContext) -> Response:
        account_id = parse_id(request.path_params["id"])
        account = None if account_id is None else self.sandbox.accounts.by_id(account_id)
        if account is None:
            return error(404, RECORD_NOT_FOUND)
        params = await read_params(request)
        limit = _limit(params)
        if params.flag("pinned"):
            return JSONResponse([])  # the sandbox has no pinned statuses
        page = Page(
            limit=limit,
            max_id=parse_id(params.get("max_id")),
            since_id=parse_id(params.get("since_id")),
            min_id=parse_id(params.get("min_id")),
        )
        records = self.sandbox.statuses.of_account(
            account.id,
            page,
            exclude_replies=bool(params.flag("exclude_replies")),
            only_media=bool(params.flag("only_media")),
            tagged=params.get("tagged") or None,
        )
        records = [record for record in records if self._visible(record, ctx)]
        body = self.sandbox.entities.status_list(records, ctx.base_url, ctx.viewer_id)
        response = JSONResponse(body)
        # Mastodon links the next page of an account's statuses only when this one is full.
        ids = [record.id for record in records]
        link = _link_header(request, ctx.base_url, ids, more=len(records) == limit)
        if link:
            response.headers["Link"] = link
        return response

    # Timelines and notifications

    async def tag_timeline(self, request: Request, ctx: ApiContext) -> Response:
        """Public statuses carrying the tag, newest first. An unknown tag is an empty
        list (Mastodon finds no Tag and answers `[]`), never a 404."""
        params = await read_params(request)
        name = request.path_params["hashtag"].lstrip("#").lower()
        limit = _limit(params)
        records = self.sandbox.statuses.tagged(
            name,
            _page(params, limit),
            only_media=bool(params.flag("only_media")),
            remote=bool(params.flag("remote")),
        )
        body = self.sandbox.entities.status_list(records, ctx.base_url, ctx.viewer_id)
        return _paged(request, ctx, body, [record.id for record in records])

    async def notifications(self, request: Request, ctx: ApiContext) -> Response:
        """The token's account's notifications, newest first, filtered by `types[]` and
        `exclude_types[]` (lists only: Rails drops a scalar `types=`) and `account_id`."""
        assert ctx.account is not None
        params = await read_params(request)
        limit = _limit(params, NOTIFICATIONS_DEFAULT_LIMIT, NOTIFICATIONS_MAX_LIMIT)
        sender = params.get("account_id")
        records = self.sandbox.notifications.of_account(
            ctx.account.id,
            _page(params, limit),
            types=params.lists.get("types"),
            exclude_types=params.lists.get("exclude_types"),
            # An id that is no account matches nothing, as in Mastodon's query.
            from_account_id=None if not sender else (parse_id(sender) or -1),
        )
        body = self.sandbox.entities.notification_list(records, ctx.base_url, ctx.viewer_id)
        return _paged(request, ctx, body, [record.id for record in records])

    # Statuses

    async def status(self, request: Request, ctx: ApiContext) -> Response:
        status_id = parse_id(request.path_params["id"])
        record = None if status_id is None else self.sandbox.statuses.get(status_id)
        record = self._visible(record, ctx)
        if record is None:
            return error(404, RECORD_NOT_FOUND)
        return JSONResponse(self.sandbox.entities.status(record, ctx.base_url, ctx.viewer_id))

    async def create_status(self, request: Request, ctx: ApiContext) -> Response:
        sandbox = self.sandbox
        account = ctx.account
        assert account is not None
        try:
            params = await read_params(request)
        except BadRequest as bad:
            return error(400, str(bad))
        claim = ctx.claim
        if claim is not None and claim.existing_status_id is not None:
            earlier = sandbox.statuses.get(claim.existing_status_id)
            if earlier is not None:
                return JSONResponse(sandbox.entities.status(earlier, ctx.base_url, account.id))

        parent = None
        reply_to = params.get("in_reply_to_id")
        if reply_to:
            parent_id = parse_id(reply_to)
            parent = None if parent_id is None else sandbox.statuses.get(parent_id)
            if self._visible(parent, ctx) is None:
                return error(404, REPLY_NOT_FOUND)
        if params.get("scheduled_at"):
            return error(422, "Validation failed: Scheduled posts are not supported here")
        if params.get("poll") is not None or "poll" in params.lists:
            return error(422, "Validation failed: Polls are not supported here")

        media_ids = params.lists.get("media_ids", [])
        if len(media_ids) > MAX_MEDIA_ATTACHMENTS:
            return error(422, f"Cannot attach more than {MAX_MEDIA_ATTACHMENTS} files.")
        attach: list[int] = []
        missing: list[str] = []
        unfinished = False
        arrived_ms = now_ms()
        for raw in media_ids:
            media_id = parse_id(raw)
            media = None if media_id is None else sandbox.statuses.media(media_id)
            if media is None or media.account_id != account.id or media.status_id is not None:
                missing.append(raw)
            elif media.id not in attach:
                attach.append(media.id)
                unfinished = unfinished or not media.processed(arrived_ms)
        if missing:
            return error(
                422, f"Media {', '.join(missing)} not found or already attached to another post"
            )
        if unfinished:
            return error(422, NOT_FINISHED)

        text = params.text("status")
        spoiler = params.text("spoiler_text")
        visibility = params.get("visibility") or "public"
        if visibility not in VISIBILITIES:
            return error(422, f"'{visibility}' is not a valid visibility")
        if not text.strip() and not attach:
            return error(422, "Validation failed: Text can't be blank")
        limit = sandbox.config.max_characters
        if character_count(text, spoiler) > limit:
            return error(422, f"Validation failed: Text character limit of {limit} exceeded")
        language = (params.get("language") or "en").lower()

        created_ms = now_ms()
        with sandbox.db.transaction():
            record = sandbox.statuses.insert(
                NewStatus(
                    account_id=account.id,
                    text=text,
                    created_at_ms=created_ms,
                    origin="api",
                    spoiler_text=spoiler,
                    in_reply_to=parent,
                    visibility=visibility,
                    language=language,
                    sensitive=bool(params.flag("sensitive")) or bool(spoiler),
                    idempotency_key=claim.key if claim else None,
                ),
                attach,
            )
            sandbox.db.incr("statuses_created")
            if claim is not None:
                sandbox.idempotency.complete(claim, record.id, created_ms)
        return JSONResponse(sandbox.entities.status(record, ctx.base_url, account.id))

    # Media

    async def upload_media(self, request: Request, ctx: ApiContext) -> Response:
        sandbox = self.sandbox
        assert ctx.account is not None
        try:
            params = await read_params(request)
        except BadRequest as bad:
            return error(400, str(bad))
        upload = params.files.get("file")
        if upload is None or not upload.data:
            return error(422, "Validation failed: File can't be blank")
        description = params.get("description")
        if description is not None and len(description) > DESCRIPTION_LIMIT:
            return error(
                422,
                "Validation failed: Description is too long "
                f"(maximum is {DESCRIPTION_LIMIT} characters)",
            )
        try:
            info = inspect_image(upload.data)
        except MediaRejected as rejected:
            return error(422, str(rejected))
        uploaded_ms = now_ms()
        with sandbox.db.transaction():
            record = sandbox.statuses.add_media(
                ctx.account.id,
                info.mime,
                info.ext,
                upload.data,
                description or None,
                info.width,
                info.height,
                uploaded_ms,
                sandbox.processing.ready_at(uploaded_ms),
            )
            sandbox.db.incr("media_uploaded")
        if not record.processed(uploaded_ms):
            # Mastodon: accepted, processing goes on; poll GET /api/v1/media/:id.
            body = sandbox.entities.media(record, ctx.base_url, processed=False)
            return JSONResponse(body, status_code=202)
        return JSONResponse(sandbox.entities.media(record, ctx.base_url))

    async def media(self, request: Request, ctx: ApiContext) -> Response:
        media_id = parse_id(request.path_params["id"])
        record = None if media_id is None else self.sandbox.statuses.media(media_id)
        if record is None or record.account_id != ctx.viewer_id:
            return error(404, RECORD_NOT_FOUND)
        if not record.processed(now_ms()):
            # 206 Partial Content: still processing, `url` null (Mastodon's answer).
            body = self.sandbox.entities.media(record, ctx.base_url, processed=False)
            return JSONResponse(body, status_code=206)
        return JSONResponse(self.sandbox.entities.media(record, ctx.base_url))

    # Search

    async def search(self, request: Request, ctx: ApiContext) -> Response:
        sandbox = self.sandbox
        assert ctx.account is not None
        params = await read_params(request)
        q = (params.get("q") or "").strip()
        if not q:
            return error(400, "param is missing or the value is empty: q")
        kind = params.get("type")
        limit = _limit(params)
        offset_raw = params.get("offset") or "0"
        offset = min(int(offset_raw), 10_000) if offset_raw.isdigit() and len(offset_raw) < 9 else 0
        result: dict[str, list[object]] = {"accounts": [], "statuses": [], "hashtags": []}

        if kind in (None, "", "statuses"):
            records = self._resolve(q, ctx) if params.flag("resolve") else None
            if records is None:
                try:
                    query = parse_query(q)
                except InvalidQuery as invalid:
                    return error(422, str(invalid))
                records = []
                if not query.empty:
                    query.account_id = parse_id(params.get("account_id"))
                    page = Page(
                        limit=limit,
                        max_id=parse_id(params.get("max_id")),
                        min_id=parse_id(params.get("min_id")),
                        offset=offset,
                    )
                    records = sandbox.statuses.search(query, ctx.account.id, page)
            result["statuses"] = list(
                sandbox.entities.status_list(records, ctx.base_url, ctx.viewer_id)
            )
        if kind in (None, "", "accounts"):
            needle = q.removeprefix("@").split("@", 1)[0].casefold()
            found = [
                candidate
                for candidate in sandbox.accounts.all()
                if needle in candidate.username.casefold()
                or needle in candidate.display_name.casefold()
            ]
            result["accounts"] = [
                sandbox.entities.account(candidate, ctx.base_url)
                for candidate in found[offset : offset + limit]
            ]
        return JSONResponse(result)

    def _resolve(self, q: str, ctx: ApiContext) -> list[StatusRecord] | None:
        """`resolve=true` with a local status URL returns that status (as Mastodon does)."""
        if not q.startswith(("http://", "https://")):
            return None
        match = LOCAL_STATUS_URL_RE.search(q)
        if match is None:
            return []
        record = self._visible(self.sandbox.statuses.get(int(match.group(2))), ctx)
        return [record] if record is not None else []

    # Instance (public)

    async def instance_v2(self, request: Request, ctx: ApiContext) -> Response:
        return JSONResponse(self.sandbox.entities.instance_v2(ctx.base_url))

    async def instance_v1(self, request: Request, ctx: ApiContext) -> Response:
        return JSONResponse(self.sandbox.entities.instance_v1(ctx.base_url))


def _paged(request: Request, ctx: ApiContext, body: list[Any], ids: list[int]) -> Response:
    """A timeline-like page: Mastodon links `next` and `prev` whenever the page has
    anything (the end shows as an empty page, which carries no `Link`)."""
    response = JSONResponse(body)
    link = _link_header(request, ctx.base_url, ids, more=True)
    if link:
        response.headers["Link"] = link
    return response


def _link_header(request: Request, base: str, ids: list[int], *, more: bool) -> str:
    """Mastodon's paging links: `next` (older) when `more`, `prev` (newer); none for an
    empty page. Other parameters (`limit`, `types[]`) are carried over."""
    if not ids:
        return ""
    kept = [
        (name, value)
        for name, value in request.query_params.multi_items()
        if name not in ("max_id", "min_id", "since_id")
    ]
    url = base + request.url.path
    links = []
    if more:
        links.append(f'<{url}?{urlencode([*kept, ("max_id", ids[-1])])}>; rel="next"')
    links.append(f'<{url}?{urlencode([*kept, ("min_id", ids[0])])}>; rel="prev"')
    return ", ".join(links)
