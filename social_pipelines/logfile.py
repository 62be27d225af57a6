"""The optional JSON log file (`SOCIAL_LOG_FILE`), for teams that ship logs elsewhere.

One JSON object a line: `time` (ISO 8601, UTC), `level`, `logger`, `message`, and when
known `run_id`, `job`, `step`, `event` (a Dagster event's type) and `exception` (the
traceback, or a failed step's error). Every value passes `RedactSecrets` first.

Two ways in, one file:
- `install` attaches the file to the project's and httpx's stdlib loggers, once per
  process: library logs (requests, breaker transitions, token refreshes, the core's own
  warnings) from every process, runs or not (CLI, sensors, daemon, run workers);
- `RunLogFile`, named in `dagster.yaml` under `python_logs.dagster_handler_config`, gets
  every record of a run from Dagster (what ops log to `context.log`, step failures with
  their errors) and writes those the first way has not written already.

Every process of a deployment writes the same file (webserver, daemon, code servers, one
process per run), so rotation must be safe across processes: stdlib's RotatingFileHandler
is not (a process that rotated renames the file another still writes to, whose next
rotation then overwrites the backup the first one made). `SharedRotatingFile` writes and
rotates under an inter-process file lock (filelock, already used by the rate buckets) and
reopens the file when another process rotated it, so no line is lost or torn.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from social_pipelines.redact import RedactSecrets

# The loggers whose records the file takes directly (a run's records reach it through
# `RunLogFile` as well: those of these loggers are written once, here).
LIBRARY_LOGGERS = ("social_pipelines", "httpx")
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 5
# What the run a record was logged in is: `{"run_id", "job", "step"}`, or None outside a run.
RunContext = Callable[[], Mapping[str, str] | None]
_CONTEXT_ATTRIBUTE = "social_run"


def _dagster_meta(record: logging.LogRecord) -> dict[str, Any] | None:
    """What Dagster's log handler attached to a run's record (read, never imported)."""
    meta = getattr(record, "dagster_meta", None)
    return meta if isinstance(meta, dict) else None


def _dagster_error(meta: Mapping[str, Any]) -> str | None:
    """A Dagster event's error (a failed step, a failed run) as text."""
    event = meta.get("dagster_event")
    error = getattr(getattr(event, "event_specific_data", None), "error", None)
    to_string = getattr(error, "to_string", None)
    return str(to_string()) if callable(to_string) else None


class JsonLines(logging.Formatter):
    """One JSON object per record; see the module docstring for the fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        meta = _dagster_meta(record)
        if meta is not None:
            entry["message"] = meta.get("orig_message") or entry["message"]
            run = {"run_id": meta.get("run_id"), "job": meta.get("job_name")}
            run["step"] = meta.get("step_key")
            event = meta.get("dagster_event")
            if event is not None:
                run["event"] = getattr(event, "event_type_value", None)
            entry.update({key: value for key, value in run.items() if value})
        else:
            entry.update(getattr(record, _CONTEXT_ATTRIBUTE, None) or {})
        exception = record.exc_text
        if not exception and record.exc_info:
            exception = self.formatException(record.exc_info)
        if not exception and meta is not None:
            exception = _dagster_error(meta)
        if exception:
            entry["exception"] = exception
        return json.dumps(entry, ensure_ascii=False, default=str)


class _AddRunContext(logging.Filter):
    """Stamps a record logged inside a run with the run and step (`RunContext`)."""

    def __init__(self, context: RunContext | None) -> None:
        super().__init__()
        self.context = context

    def filter(self, record: logging.LogRecord) -> bool:
        if self.context is not None and _dagster_meta(record) is None:
            try:
                known = self.context()
            except Exception:  # the log line matters more than its context
                known = None
            if known:
                setattr(record, _CONTEXT_ATTRIBUTE, dict(known))
        return True


class SharedRotatingFile(logging.handlers.RotatingFileHandler):
    """RotatingFileHandler safe for many processes writing one file (module docstring):
    each line is written, and the file rotated, under a lock file beside it, and a file
    rotated by another process is reopened before the next write."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True
        )
        self._file_lock = FileLock(str(path) + ".lock", thread_local=False)
        # As stdlib: a size or a count of zero means the file is never rotated.
        self._rotates = max_bytes > 0 and backups > 0

    def _reopen_if_rotated(self) -> None:
        if self.stream is None:
            return
        try:
            current = os.stat(self.baseFilename).st_ino
        except FileNotFoundError:
            current = None
        if current != os.fstat(self.stream.fileno()).st_ino:
            self.stream.close()
            self.stream = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            with self._file_lock:
                self._reopen_if_rotated()
                if self.stream is None:
                    self.stream = self._open()
                size = os.fstat(self.stream.fileno()).st_size
                if self._rotates and size > 0 and size + len(line.encode()) > self.maxBytes:
                    self.doRollover()
                    if self.stream is None:
                        self.stream = self._open()
                self.stream.write(line)
                self.stream.flush()
        except Exception:
            self.handleError(record)


class _LastResort(logging.Handler):
    """Python prints a warning to stderr only when no handler at all takes it (its "last
    resort"); the file's handler would count as one. This keeps warnings on stderr exactly
    where they were before the file was configured."""

    def __init__(self, ours: Callable[[], Iterable[logging.Handler]]) -> None:
        super().__init__(logging.WARNING)
        self._ours = ours

    def emit(self, record: logging.LogRecord) -> None:
        ours = set(self._ours()) | {self}
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None:
            if any(handler not in ours for handler in logger.handlers):
                return  # another handler takes it, as it did before
            if not logger.propagate:
                break
            logger = logger.parent
        if logging.lastResort is not None:
            logging.lastResort.handle(record)


class LogFile:
    """The file of one process: its handler, and the loggers it is attached to."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backups: int = DEFAULT_BACKUPS,
        secrets: Iterable[str] = (),
        context: RunContext | None = None,
        loggers: Iterable[str] = LIBRARY_LOGGERS,
    ) -> None:
        self.path = path
        self.redaction = RedactSecrets(secrets)
        self.handler = SharedRotatingFile(path, max_bytes=max_bytes, backups=backups)
        self.handler.setLevel(logging.INFO)
        self.handler.setFormatter(JsonLines())
        self.context = _AddRunContext(context)
        self.handler.addFilter(self.context)
        self.handler.addFilter(self.redaction)
        self.loggers = tuple(loggers)
        self._last_resort = _LastResort(lambda: (self.handler,))

    def attach(self) -> None:
        for name in self.loggers:
            logger = logging.getLogger(name)
            # Their INFO lines (requests, token refreshes) are what the file is for.
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.addHandler(self.handler)
            logger.addHandler(self._last_resort)

    def detach(self) -> None:
        for name in self.loggers:
            logger = logging.getLogger(name)
            logger.removeHandler(self.handler)
            logger.removeHandler(self._last_resort)
        self.handler.close()

    def takes_directly(self, logger_name: str) -> bool:
        return any(logger_name == n or logger_name.startswith(n + ".") for n in self.loggers)


_installed: LogFile | None = None


def install(
    path: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    backups: int = DEFAULT_BACKUPS,
    secrets: Iterable[str] = (),
    context: RunContext | None = None,
) -> LogFile:
    """The process's log file, attached once: called again with the same file it only
    learns more secrets (and a context it lacked); with another file it moves there."""
    global _installed
    resolved = path.expanduser().resolve()
    if _installed is not None and _installed.path == resolved:
        _installed.redaction.add(secrets)
        if context is not None and _installed.context.context is None:
            _installed.context.context = context
        return _installed
    uninstall()
    log_file = LogFile(
        resolved, max_bytes=max_bytes, backups=backups, secrets=secrets, context=context
    )
    log_file.attach()
    _installed = log_file
    return log_file


def installed() -> LogFile | None:
    return _installed


def uninstall() -> None:
    """Detach and close the process's log file, if there is one."""
    global _installed
    if _installed is not None:
        _installed.detach()
        _installed = None


class RunLogFile(logging.Handler):
    """The handler `dagster.yaml` names under `python_logs.dagster_handler_config`: every
    record of a run (Dagster builds one per run from the YAML) goes to this process's log
    file, unless the file took it directly already. Nothing happens without a log file."""

    def __init__(self, level: int | str = logging.INFO) -> None:
        super().__init__(level)

    def emit(self, record: logging.LogRecord) -> None:
        log_file = _installed
        if log_file is None or log_file.takes_directly(record.name):
            return
        if record.levelno >= log_file.handler.level:
            log_file.handler.handle(record)
