"""A deadline for each request's headers, which uvicorn does not have: its keep-alive timeout starts
only after a first response and stops at the first byte of the next request, so a connection that
never sends a request, or sends its headers a byte at a time, would stay open for ever.

The deadline runs while the server waits for a request's headers (from the connection's start, or
from the previous response); past it a client that had begun a request gets 408 and the connection
is closed with one log line; an idle connection is closed quietly. The body's deadline is the app's
(keypoints.web.app.read_upload), which can answer 408 there.
"""

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("keypoints.web")


def with_header_deadline(seconds: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol (uvicorn.Config(http=...)) with a `seconds` deadline for headers."""
    return type("H11WithHeaderDeadline", (HeaderDeadline,), {"header_timeout": seconds})


class HeaderDeadline(H11Protocol):
    header_timeout: float = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _waiting_for_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _watch(self) -> None:
        """Armed while the server waits for headers (once, not re-armed by each byte); off otherwise."""
        if self.transport.is_closing() or not self._waiting_for_headers():
            self._cancel()
        elif self._deadline is None:
            self._deadline = self.loop.call_later(self.header_timeout, self._expired)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or not self._waiting_for_headers():
            return
        client = "%s:%d" % self.client if self.client else "a client"
        if self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:  # half-sent headers: tell it why
            log.warning(f"{client}: request headers not complete within header_timeout_s={self.header_timeout:g}; closed")
            body = b'{"detail": "request headers not received in time (header_timeout_s)"}'
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
                                 b"content-length: %d\r\n\r\n%s" % (len(body), body))
        else:  # an idle connection (a browser's preconnect, or a client that went quiet): closed without a word
            log.info(f"{client}: no request within header_timeout_s={self.header_timeout:g}; closed")
        self.transport.close()
