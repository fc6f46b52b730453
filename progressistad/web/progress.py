"""POST /progress: events in, all or none."""

from __future__ import annotations

from typing import List, Optional

import tornado.web

from progressistad.core.schemas import InvalidInput, load_events, parse_json
from progressistad.core.store import CapacityError
from progressistad.web.auth import Access
from progressistad.web.base import ApiError, ApiHandler, read_only, unauthorized
from progressistad.web.server import drain_before_close


@tornado.web.stream_request_body
class ProgressHandler(ApiHandler):
    """POST /progress: apply one event or a batch (a JSON array), all or none.

    200 `{"ok": true, "accepted": N, "ignored": [unknown fields]}`; 400 malformed
    or invalid (naming field and batch index); 401 no valid write token; 413 body
    over --max-body-bytes; 503 with Retry-After when --max-tasks is exhausted.
    """

    access = {"POST": Access.WRITE}
    body_credentials = frozenset({"POST"})
    """Older clients send their token as `meta._token` in each event."""

    def prepare(self) -> None:
        self._chunks: list = []
        self._size = 0
        declared = self.request.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.ctx.settings.max_body_bytes:
            # Raise tornado's own limit so it does not answer 400 behind our 413.
            self.request.connection.set_max_body_size(int(declared))
            self._refuse_too_large()
            return
        super().prepare()

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._size += len(chunk)
        if self._size > self.ctx.settings.max_body_bytes:
            self._refuse_too_large()
        else:
            self._chunks.append(chunk)

    def _refuse_too_large(self) -> None:
        limit = self.ctx.settings.max_body_bytes
        self.ctx.metrics.reject("too_large")
        error = ApiError(413, f"request body larger than --max-body-bytes={limit}", limit=limit,
                         headers={"Connection": "close"})
        # The connection closes once the 413 is written; draining the rest of the body first
        # lets a client that sends it all before reading get the 413, not a reset.
        drain_before_close(self.request)
        self.send_error(413, exc_info=(ApiError, error, None))
        self._chunks = []

    async def post(self) -> None:
        if self._finished:
            return
        try:
            payload = parse_json(b"".join(self._chunks))
        except InvalidInput as error:
            self._require_write_before_detail()
            raise self.rejected(error, "malformed") from None
        try:
            parsed = load_events(payload)
        except InvalidInput as error:
            self._require_write_before_detail()
            raise self.rejected(error, "invalid", len(payload) if isinstance(payload, list) else 1)
        self._authorize(parsed.meta_tokens)
        try:
            await self.call(self.ctx.service.ingest(parsed.events))
        except InvalidInput as error:  # a rule that depends on a task's state (the metrics cap)
            raise self.rejected(error, "invalid", len(parsed.events)) from None
        except CapacityError as error:
            self.ctx.metrics.reject("capacity", len(parsed.events))
            raise ApiError(503, str(error), headers=self.retry_after(),
                           max_tasks=error.max_tasks) from None
        self.write_json({"ok": True, "accepted": len(parsed.events), "ignored": parsed.ignored})

    def _require_write_before_detail(self) -> None:
        """Without a credential outside the body, say 401 rather than describe a body we may not read."""
        if self.granted < Access.WRITE:
            self.ctx.metrics.reject("unauthorized")
            raise unauthorized()

    def _authorize(self, meta_tokens: List[Optional[str]]) -> None:
        """Settle access the base deferred: every event's `meta._token` must grant write."""
        if self.granted >= Access.WRITE:
            return
        granted = [self.ctx.tokens.access(token) for token in meta_tokens]
        if all(access >= Access.WRITE for access in granted):
            return
        self.ctx.metrics.reject("unauthorized", len(meta_tokens))
        raise read_only() if Access.READ in granted else unauthorized()
