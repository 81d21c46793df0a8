"""JSON logs. In Lambda (log format JSON) the runtime renders records and their `extra`
fields as JSON; elsewhere (tests, moto_server benchmarks) this module does the same."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

_logger = logging.getLogger("spotyard")
_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {key: value for key, value in vars(record).items() if key not in _RECORD_FIELDS}
        return json.dumps({"level": record.levelname, "message": record.getMessage(), **fields}, default=str)


def _configure() -> None:
    if _logger.level == logging.NOTSET:  # a host (the CLI) may have chosen a level already
        _logger.setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO"))
    if "AWS_LAMBDA_LOG_FORMAT" not in os.environ and not _logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        _logger.addHandler(handler)
        _logger.propagate = False


_configure()


def _extra(fields: dict[str, Any]) -> dict[str, Any]:
    """`extra` must not shadow LogRecord attributes (name, msg, ...): those get a trailing _."""
    return {f"{key}_" if key in _RECORD_FIELDS else key: value for key, value in fields.items()}


def info(message: str, **fields: Any) -> None:
    _logger.info(message, extra=_extra(fields))


def warning(message: str, **fields: Any) -> None:
    _logger.warning(message, extra=_extra(fields))
