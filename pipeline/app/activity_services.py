"""The parts of "see what it saw" that run beside the pipeline: captions and the web page.

:class:`ActivityServices` starts the captions of ``[cameras.NAME.captions]``
(:mod:`pipeline.app.activity.captions`) and the page of ``[web]``
(:mod:`pipeline.app.web`) once the pipeline runs, starts the captions again
after a reload (cameras and backends may have changed), and stops both before
the pipeline stops. A page that cannot bind its port is logged and left out:
the watches matter more.

Example:
    >>> services = ActivityServices(pipeline, config_path).start()  # doctest: +SKIP
    >>> services.reloaded(); services.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.app.activity.captions import Captions, build_captions
from pipeline.app.activity.setup import store_db
from pipeline.app.runner import Pipeline
from pipeline.app.web.server import WebServer
from pipeline.core.redact import redact

log = logging.getLogger("lookout")


class ActivityServices:
    """Captions and the web page of a running pipeline.

    Args:
        pipeline: the started pipeline.
        config_path: the config file (relative paths are next to it).
    """

    def __init__(self, pipeline: Pipeline, config_path: Path | None) -> None:
        self.pipeline = pipeline
        self.config_path = config_path
        self.captions: Captions | None = None
        self.web: WebServer | None = None

    def _reports(self) -> Path | None:
        folder = self.pipeline.config.web.reports
        if folder is None or folder.is_absolute() or self.config_path is None:
            return folder
        return Path(self.config_path).resolve().parent / folder

    def start(self) -> ActivityServices:
        """Start the captions, then the page (when enabled)."""
        self._start_captions()
        web = self.pipeline.config.web
        if web.enabled:
            db = store_db(self.pipeline.config, self.config_path)
            try:
                self.web = WebServer(self.pipeline, db, web, self._reports()).start()
            except OSError as exc:
                log.error(
                    "web: cannot serve the page on %s:%d: %s", web.host, web.port, redact(str(exc))
                )
        return self

    def _start_captions(self) -> None:
        p = self.pipeline
        self.captions = build_captions(p.graph, p.config, p.sinks.send_caption)

    def reloaded(self) -> None:
        """The config was reloaded: start the captions again ([web] changes need a restart)."""
        if self.captions is not None:
            self.captions.stop()
        self._start_captions()

    def stop(self) -> None:
        """Stop the captions and the page."""
        if self.captions is not None:
            self.captions.stop()
            self.captions = None
        if self.web is not None:
            self.web.close()
            self.web = None
