"""uvicorn's WebSocket protocol (websockets, sans-I/O), answering handshakes it cannot parse.

For an upgrade request whose request line or a header is over websockets' 8 KB limit, the
library prepares a 414/431 response and expects it to be sent, but uvicorn 0.54 only looks at
frame errors: the request was never answered nor closed, and each one held a socket open.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.handshake_exc is not None and not self.transport.is_closing():
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()
