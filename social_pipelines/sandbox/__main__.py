"""`python -m social_pipelines.sandbox`: run the sandbox platform on loopback.

The only thing written to stdout is one `SANDBOX_URL=http://HOST:PORT` line, once the
server accepts connections, so a parent process (SandboxProcess, `make run`, a CI script)
can start it with `--port 0` and learn where it is without racing or polling.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
from pathlib import Path
from types import FrameType

import uvicorn

from social_pipelines.sandbox.app import create_app
from social_pipelines.sandbox.processing import InvalidProcessing, parse_seconds
from social_pipelines.sandbox.ratelimit import RateLimitConfig
from social_pipelines.sandbox.state import DEFAULT_DOMAIN, DEFAULT_MAX_CHARACTERS, SandboxConfig
from social_pipelines.sandbox.transport import protocol_class

EXIT_BIND_FAILED = 3
GRACEFUL_SHUTDOWN_SECONDS = 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m social_pipelines.sandbox",
        description="A local Mastodon-compatible platform with rate limits and fault injection.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--db", required=True, type=Path, help="SQLite file (created if missing)")
    parser.add_argument(
        "--domain", default=DEFAULT_DOMAIN, help="the instance's stable identity (never host:port)"
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=None,
        help="requests per window per account (default 300, or the stored value)",
    )
    parser.add_argument(
        "--rate-window",
        type=float,
        default=None,
        help="window length in seconds (default 300, or the stored value)",
    )
    parser.add_argument("--no-rate-limit", action="store_true", help="switch rate limiting off")
    parser.add_argument(
        "--seed", type=int, default=0, help="fault RNG seed for fault sets that do not give one"
    )
    parser.add_argument("--max-characters", type=int, default=DEFAULT_MAX_CHARACTERS)
    parser.add_argument(
        "--ignore-idempotency-keys",
        action="store_true",
        help="create a new status for every request, whatever its Idempotency-Key (as "
        "Takahē does); default: keep the stored setting, else honour keys",
    )
    parser.add_argument(
        "--media-processing-seconds",
        type=float,
        default=None,
        help="uploads answer 202 and stay unfinished this long (0: off); default: keep the "
        "stored setting, else 0",
    )
    parser.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )
    args = parser.parse_args(argv)
    if args.media_processing_seconds is not None:
        try:
            parse_seconds(args.media_processing_seconds)
        except InvalidProcessing as bad:
            parser.error(f"--media-processing-seconds: {bad}")
    return args


def rate_limit_from(args: argparse.Namespace) -> RateLimitConfig | None:
    """Only options actually given override what the database remembers."""
    if args.rate_limit is None and args.rate_window is None and not args.no_rate_limit:
        return None
    defaults = RateLimitConfig()
    return RateLimitConfig(
        enabled=not args.no_rate_limit,
        limit=args.rate_limit if args.rate_limit is not None else defaults.limit,
        window_seconds=args.rate_window
        if args.rate_window is not None
        else defaults.window_seconds,
    )


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # says TCP, and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve(server: uvicorn.Server, sock: socket.socket, url: str) -> None:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # startup failed: surface its exception (or SystemExit)
            return
        await asyncio.sleep(0.01)
    print(f"SANDBOX_URL={url}", flush=True)
    await task


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # uvicorn re-raises the signal after its graceful shutdown; exiting through SystemExit
    # (instead of the default kill) lets the database close cleanly with status 0.
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    config = SandboxConfig(
        db_path=args.db,
        domain=args.domain,
        rate_limit=rate_limit_from(args),
        seed=args.seed,
        max_characters=args.max_characters,
        honour_idempotency_keys=False if args.ignore_idempotency_keys else None,
        media_processing_seconds=args.media_processing_seconds,
    )
    try:
        sock = bind(args.host, args.port)
    except OSError as failure:
        print(f"sandbox: cannot listen on {args.host}:{args.port}: {failure}", file=sys.stderr)
        return EXIT_BIND_FAILED
    app = create_app(config)
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http=protocol_class(),
            access_log=False,
            log_level=args.log_level,
            lifespan="off",
            workers=1,
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
    )
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(server, sock, url))
    finally:
        app.state.sandbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
