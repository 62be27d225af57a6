"""`/_sandbox/*`: the test and demo controls (seed, inspect, faults, rate limit, reset).

These never get faults, rate limits or counting: they are how a test observes the platform,
and an observation must not disturb what it observes.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from social_pipelines.sandbox.accounts import USERNAME_RE, Account
from social_pipelines.sandbox.faults import FaultSettings, InvalidFaults
from social_pipelines.sandbox.ids import iso_ms, now_ms, parse_id, parse_iso
from social_pipelines.sandbox.pipeline import base_url, error
from social_pipelines.sandbox.processing import InvalidProcessing, parse_seconds
from social_pipelines.sandbox.ratelimit import RateLimitConfig
from social_pipelines.sandbox.state import Sandbox
from social_pipelines.sandbox.statuses import NewStatus, StatusRecord


class InvalidPayload(ValueError):
    pass


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as bad:
        raise InvalidPayload(f"invalid JSON: {bad}") from bad
    if not isinstance(body, dict):
        raise InvalidPayload("expected a JSON object")
    return body


class AdminApi:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def seed(self, request: Request) -> Response:
        try:
            body = await _json_body(request)
            posts = body.get("posts")
            if not isinstance(posts, list):
                raise InvalidPayload('expected {"posts": [...]}')
            result = self._seed(posts)
        except InvalidPayload as bad:
            return error(422, str(bad))
        return JSONResponse(result)

    def _seed(self, posts: list[Any]) -> dict[str, Any]:
        sandbox = self.sandbox
        now = now_ms()
        created = skipped = 0
        ids: list[str] = []
        by_key: dict[str, str] = {}
        with sandbox.db.transaction():
            for index, post in enumerate(posts):
                if not isinstance(post, dict):
                    raise InvalidPayload(f"posts[{index}] is not an object")
                key = post.get("key")
                if key is not None and not isinstance(key, str):
                    raise InvalidPayload(f"posts[{index}].key must be a string")
                existing = sandbox.statuses.by_seed_key(key) if key else None
                if existing is not None:
                    skipped += 1
                else:
                    existing = self._seed_one(index, post, now)
                    created += 1
                ids.append(str(existing.id))
                if key:
                    by_key[key] = str(existing.id)
        return {"created": created, "skipped": skipped, "statuses": ids, "by_key": by_key}

    def _seed_one(self, index: int, post: dict[str, Any], now: int) -> StatusRecord:
        sandbox = self.sandbox
        where = f"posts[{index}]"
        author = post.get("author")
        text = post.get("text")
        if not isinstance(author, str) or not USERNAME_RE.match(author):
            raise InvalidPayload(f"{where}.author must be a username ([A-Za-z0-9_]{{1,30}})")
        if not isinstance(text, str) or not text.strip():
            raise InvalidPayload(f"{where}.text must be a non-empty string")
        account, _ = sandbox.accounts.create(author, post.get("display_name"))
        created_at = now
        try:
            if post.get("created_at"):
                created_at = parse_iso(str(post["created_at"]))
            elif post.get("age_minutes") is not None:
                created_at = now - int(float(post["age_minutes"]) * 60_000)
        except (TypeError, ValueError) as bad:
            raise InvalidPayload(f"{where}: bad created_at or age_minutes: {bad}") from bad
        parent = None
        if post.get("in_reply_to_key"):
            parent = sandbox.statuses.by_seed_key(str(post["in_reply_to_key"]))
            if parent is None:
                raise InvalidPayload(f"{where}.in_reply_to_key: no post with that key (yet)")
        elif post.get("in_reply_to_id"):
            parent_id = parse_id(str(post["in_reply_to_id"]))
            parent = None if parent_id is None else sandbox.statuses.get(parent_id)
            if parent is None:
                raise InvalidPayload(f"{where}.in_reply_to_id: no such status")
        visibility = str(post.get("visibility") or "public")
        if visibility not in ("public", "unlisted", "private", "direct"):
            raise InvalidPayload(f"{where}.visibility is not a Mastodon visibility")
        return sandbox.statuses.insert(
            NewStatus(
                account_id=account.id,
                text=text,
                created_at_ms=created_at,
                origin="seed",
                spoiler_text=str(post.get("spoiler_text") or ""),
                in_reply_to=parent,
                visibility=visibility,
                language=str(post.get("language") or "en"),
                sensitive=bool(post.get("sensitive")),
                seed_key=post.get("key") or None,
            )
        )

    async def posted(self, request: Request) -> Response:
        sandbox = self.sandbox
        account_id = None
        username = request.query_params.get("account")
        if username:
            account = sandbox.accounts.by_username(username)
            if account is None:
                return JSONResponse({"statuses": []})
            account_id = account.id
        records = sandbox.statuses.posted(account_id)
        media = sandbox.statuses.media_of([record.id for record in records])
        base = base_url(request)
        names = {account.id: account.username for account in sandbox.accounts.all()}
        return JSONResponse(
            {
                "statuses": [
                    {
                        "id": str(record.id),
                        "account": names.get(record.account_id),
                        "text": record.text,
                        "spoiler_text": record.spoiler_text,
                        "in_reply_to_id": None
                        if record.in_reply_to_id is None
                        else str(record.in_reply_to_id),
                        "idempotency_key": record.idempotency_key,
                        "media_ids": [str(item.id) for item in media.get(record.id, [])],
                        "visibility": record.visibility,
                        "language": record.language,
                        "created_at": iso_ms(record.created_at_ms),
                        "url": f"{base}/@{names.get(record.account_id)}/{record.id}",
                    }
                    for record in records
                ]
            }
        )

    async def stats(self, request: Request) -> Response:
        sandbox = self.sandbox
        db = sandbox.db
        return JSONResponse(
            {
                "requests": db.counter("requests"),
                "violations": db.counter("violations"),
                "statuses_created": db.counter("statuses_created"),
                "media_uploaded": db.counter("media_uploaded"),
                "faults": sandbox.faults.counts(),
                "rate_limit": sandbox.limiter.config.to_json(),
                "idempotency_keys_honoured": sandbox.idempotency.honoured,
            }
        )

    async def faults(self, request: Request) -> Response:
        faults = self.sandbox.faults
        if request.method == "POST":
            try:
                body = await _json_body(request)
                settings = FaultSettings.parse(body, time.time(), faults.default_seed)
            except (InvalidPayload, InvalidFaults) as bad:
                return error(422, str(bad))
            faults.configure(settings)
        elif request.method == "DELETE":
            faults.clear()
        return JSONResponse(faults.settings.to_json(time.time()))

    async def rate_limit(self, request: Request) -> Response:
        limiter = self.sandbox.limiter
        if request.method == "POST":
            try:
                body = await _json_body(request)
                merged = {**limiter.config.to_json(), **body}
                unknown = set(body) - {"enabled", "limit", "window_seconds"}
                if unknown:
                    raise InvalidPayload(f"unknown settings: {', '.join(sorted(unknown))}")
                limiter.configure(RateLimitConfig.from_json(merged))
            except (InvalidPayload, TypeError, ValueError) as bad:
                return error(422, str(bad))
        return JSONResponse(limiter.config.to_json())

    async def idempotency(self, request: Request) -> Response:
        """`{"honoured": false}` makes the server ignore `Idempotency-Key`, as Takahē does."""
        keys = self.sandbox.idempotency
        if request.method == "POST":
            try:
                body = await _json_body(request)
                unknown = set(body) - {"honoured"}
                if unknown:
                    raise InvalidPayload(f"unknown settings: {', '.join(sorted(unknown))}")
                if not isinstance(body.get("honoured"), bool):
                    raise InvalidPayload('expected {"honoured": true} or {"honoured": false}')
            except InvalidPayload as bad:
                return error(422, str(bad))
            keys.configure(honoured=body["honoured"])
        return JSONResponse({"honoured": keys.honoured})

    async def media(self, request: Request) -> Response:
        """`{"processing_seconds": N}`: uploads answer 202 and stay unfinished N seconds."""
        processing = self.sandbox.processing
        if request.method == "POST":
            try:
                body = await _json_body(request)
                unknown = set(body) - {"processing_seconds"}
                if unknown:
                    raise InvalidPayload(f"unknown settings: {', '.join(sorted(unknown))}")
                if "processing_seconds" not in body:
                    raise InvalidPayload('expected {"processing_seconds": N}')
                seconds = parse_seconds(body["processing_seconds"])
            except (InvalidPayload, InvalidProcessing) as bad:
                return error(422, str(bad))
            processing.configure(seconds)
        return JSONResponse(processing.to_json())

    async def accounts(self, request: Request) -> Response:
        sandbox = self.sandbox
        base = base_url(request)
        if request.method == "GET":
            return JSONResponse(
                {
                    "accounts": [
                        self._account_json(account, base) for account in sandbox.accounts.all()
                    ]
                }
            )
        try:
            body = await _json_body(request)
            username = body.get("username")
            if not isinstance(username, str):
                raise InvalidPayload("username is required")
            account, created = sandbox.accounts.create(
                username,
                body.get("display_name"),
                str(body.get("note") or ""),
                bool(body.get("bot")),
            )
        except (InvalidPayload, ValueError) as bad:
            return error(422, str(bad))
        return JSONResponse({**self._account_json(account, base), "created": created})

    def _account_json(self, account: Account, base: str) -> dict[str, Any]:
        return {
            "account": self.sandbox.entities.account(account, base),
            "token": account.token,
        }

    async def reset(self, request: Request) -> Response:
        self.sandbox.reset()
        return JSONResponse({"ok": True})
