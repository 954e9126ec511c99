"""Structured JSON logs with a request id, and nothing that identifies a person.

Log lines carry only what the code passes in ``extra``; no handler formats
request bodies. The request id (``X-Request-ID``) is set per request in a
context variable and propagated on calls to other services.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import io
import json
import logging
import logging.handlers
import sys
from pathlib import Path

from ttp.private_files import private_dir, private_opener

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            "requestId": request_id_var.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        return json.dumps(doc, default=str, ensure_ascii=False)


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A size-rotated log file (and its rotated copies) that only the owner can read."""

    def _open(self) -> io.TextIOWrapper:
        stream = open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors,  # noqa: SIM115
                      opener=private_opener)
        assert isinstance(stream, io.TextIOWrapper)
        return stream


def configure_logging(
    service: str, level: str = "info", log_file: Path | None = None, *,
    max_bytes: int = 50 * 1024 * 1024, backups: int = 10,
) -> None:
    """Send JSON lines to exactly one place: ``log_file`` (rotated) if given, else stderr.

    One destination per line: under ``ttp up`` the service's stderr was itself
    redirected into the log directory, so a line written to both stderr and the
    file was stored twice. In a container stderr is the log (the runtime keeps
    and rotates it), so no file is written there. A file is rotated at
    ``max_bytes`` with ``backups`` old copies kept, by this process itself,
    because it is the file's only writer (no logrotate needed).
    """
    handler: logging.Handler
    if log_file is not None:
        private_dir(log_file.parent)
        handler = PrivateRotatingFileHandler(log_file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    for old in root.handlers:
        old.close()
    root.handlers.clear()
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
