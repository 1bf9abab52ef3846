"""log_unexpected: a redacted traceback at DEBUG every time, once at ERROR for a new kind."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from pipeline.core.logs import log_unexpected, setup_logging
from pipeline.core.redact import register_secret

PASSWORD = "pw-7Gq2-not-for-logs"
TOKEN = "tok-9XfA-registered"


def _open_camera(url: str) -> None:
    raise OSError(f"cannot open {url}")


def _connect(url: str) -> None:
    try:
        _open_camera(url)
    except OSError as exc:
        raise RuntimeError(f"camera gave up on {url} with {TOKEN}") from exc


def _caught(fail: type[BaseException] = KeyError) -> BaseException:
    try:
        raise fail("boom")
    except BaseException as exc:
        return exc


def _site_a(log: logging.Logger, exc: BaseException, **kw: object) -> None:
    log_unexpected(log, "site a failed", exc, **kw)  # type: ignore[arg-type]


def _site_b(log: logging.Logger, exc: BaseException) -> None:
    log_unexpected(log, "site b failed", exc)


@pytest.fixture
def log(request: pytest.FixtureRequest) -> Iterator[logging.Logger]:
    """A logger of its own per test: kinds already seen belong to (logger, type, site)."""
    logger = logging.getLogger(f"lookout.test.{request.node.name}")
    logger.setLevel(logging.DEBUG)
    yield logger
    logger.setLevel(logging.NOTSET)


class _Plain(logging.Handler):
    """Keeps each record's text as emitted: no RedactingFilter, before any root handler."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append((record.levelname, self.format(record)))


def test_the_traceback_is_logged_redacted_even_without_a_redacting_handler(
    log: logging.Logger,
) -> None:
    plain = _Plain()  # on the logger itself: it sees the record before any root filter
    log.addHandler(plain)
    register_secret(TOKEN)
    url = f"rtsp://admin:{PASSWORD}@10.0.0.2/live?token={PASSWORD}"
    try:
        _connect(url)
    except RuntimeError as exc:
        log_unexpected(log, f"camera front: {url}", exc)
    finally:
        log.removeHandler(plain)
    text = "\n".join(t for _, t in plain.texts)
    assert "Traceback (most recent call last)" in text
    assert "in _open_camera" in text and "in _connect" in text  # both frames, with the cause
    assert "The above exception was the direct cause" in text
    assert "rtsp://admin:***@10.0.0.2/live" in text
    assert PASSWORD not in text and TOKEN not in text
    assert [level for level, _ in plain.texts] == ["ERROR"]


def test_error_once_per_kind_then_debug(
    log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, log.name)
    _site_a(log, _caught(KeyError))
    _site_a(log, _caught(KeyError))  # the same kind again
    _site_a(log, _caught(ValueError))  # another type, same site
    _site_b(log, _caught(KeyError))  # another site
    other = logging.getLogger(log.name + ".other")
    _site_a(other, _caught(KeyError))  # another logger
    levels = [(r.levelname, r.getMessage().splitlines()[0]) for r in caplog.records]
    assert levels == [
        ("ERROR", "site a failed (first KeyError here; repeats are logged at DEBUG)"),
        ("DEBUG", "site a failed"),
        ("ERROR", "site a failed (first ValueError here; repeats are logged at DEBUG)"),
        ("ERROR", "site b failed (first KeyError here; repeats are logged at DEBUG)"),
        ("ERROR", "site a failed (first KeyError here; repeats are logged at DEBUG)"),
    ]
    assert all("Traceback (most recent call last)" in r.getMessage() for r in caplog.records)
    assert {r.funcName for r in caplog.records} == {"_site_a", "_site_b"}  # the caller's place


def test_expected_faults_stay_at_debug(
    log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, log.name)
    _site_a(log, _caught(TimeoutError), expected=(OSError,))
    _site_a(log, _caught(TimeoutError), expected=(OSError,))
    assert [r.levelname for r in caplog.records] == ["DEBUG", "DEBUG"]
    assert "TimeoutError: boom" in caplog.records[0].getMessage()


def test_json_lines_keep_the_traceback_in_one_redacted_line(log: logging.Logger) -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    setup_logging("DEBUG", json_lines=True, stream=out)
    try:
        try:
            _open_camera(f"rtsp://admin:{PASSWORD}@cam/live")
        except OSError as exc:
            log_unexpected(log, "camera failed", exc)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    record = orjson.loads(lines[0])
    assert record["level"] == "ERROR" and "in _open_camera" in record["message"]
    assert PASSWORD not in lines[0]
