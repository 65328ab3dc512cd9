"""A relay that can stop reading from the server, and knows where WebSocket frames end.

``FaultProxy`` reads everything the server sends, so a killed server has always handed whole
frames to the kernel. To kill a server *mid-frame* the reader must fall behind: the relay's
upstream socket has a small receive buffer and :meth:`Relay.pause` stops reading it, so the
server's socket fills and its writes stop inside a frame. When the server dies the relay
forwards what the kernel had, then closes the client side; :attr:`Relay.cut_mid_frame` counts
the links whose last forwarded byte was inside a frame (the client got a truncated frame).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket


class FrameTracker:
    """Follows server-to-client bytes: the HTTP response head, then WebSocket frames."""

    def __init__(self) -> None:
        self._in_http = True
        self._http_tail = b""
        self._header = bytearray()
        self._remaining = 0

    @property
    def at_boundary(self) -> bool:
        """True if the bytes so far end exactly at a frame boundary."""
        return not self._in_http and not self._header and self._remaining == 0

    def feed(self, data: bytes) -> None:
        """Account for ``data`` (the next bytes of the stream)."""
        i = 0
        if self._in_http:
            buf = self._http_tail + data
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self._http_tail = buf[-3:]
                return
            self._in_http = False
            i = end + 4 - len(self._http_tail)
            self._http_tail = b""
        while i < len(data):
            if self._remaining:
                take = min(self._remaining, len(data) - i)
                self._remaining -= take
                i += take
                continue
            self._header.append(data[i])
            i += 1
            need = self._header_length()
            if need is not None and len(self._header) == need:
                self._remaining = self._payload_length()
                self._header.clear()

    def _header_length(self) -> int | None:
        if len(self._header) < 2:
            return None
        code = self._header[1] & 0x7F
        extra = 2 if code == 126 else 8 if code == 127 else 0
        return 2 + extra + (4 if self._header[1] & 0x80 else 0)

    def _payload_length(self) -> int:
        code = self._header[1] & 0x7F
        if code == 126:
            return int.from_bytes(self._header[2:4], "big")
        if code == 127:
            return int.from_bytes(self._header[2:10], "big")
        return code


def send_queue(server_port: int, peer_ports: set[int]) -> int:
    """Bytes queued in the kernel by the server's sockets to ``peer_ports`` (/proc/net/tcp
    ``tx_queue``, readable without privileges)."""
    total = 0
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, queues = fields[1], fields[2], fields[4]
            if (int(local.split(":")[1], 16) == server_port
                    and int(remote.split(":")[1], 16) in peer_ports):
                total += int(queues.split(":")[0], 16)
    return total


class Relay:
    """TCP relay on 127.0.0.1 port 0 to ``upstream_port``; see the module docstring."""

    def __init__(self, upstream_port: int, *, upstream_rcvbuf: int = 4096) -> None:
        self.upstream_port = upstream_port
        self._rcvbuf = upstream_rcvbuf
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._tasks: set[asyncio.Task[None]] = set()
        #: links whose server side ended while a frame was incomplete
        self.cut_mid_frame = 0
        #: links whose server side ended at a frame boundary
        self.cut_at_boundary = 0
        #: local ports of the relay's open upstream sockets (to find them in /proc/net/tcp)
        self.upstream_ports: set[int] = set()

    async def start(self) -> Relay:
        """Listen; returns ``self``."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    @property
    def port(self) -> int:
        """Where clients connect."""
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def pause(self) -> None:
        """Stop reading from the server (bytes pile up in the server's socket)."""
        self._flowing.clear()

    def resume(self) -> None:
        """Read and forward again."""
        self._flowing.set()

    async def aclose(self) -> None:
        """Stop listening and drop every link."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)
            sock.setblocking(False)
            try:
                await asyncio.get_running_loop().sock_connect(
                    sock, ("127.0.0.1", self.upstream_port))
            except OSError:
                sock.close()
                c_writer.transport.abort()
                return
            local_port: int = sock.getsockname()[1]
            self.upstream_ports.add(local_port)
            u_reader, u_writer = await asyncio.open_connection(sock=sock, limit=4096)
            up = asyncio.create_task(self._pump_up(c_reader, u_writer))
            await self._pump_down(u_reader, c_writer)
            self.upstream_ports.discard(local_port)
            up.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await up
            u_writer.transport.abort()
        finally:
            self._tasks.discard(task)

    @staticmethod
    async def _pump_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
        writer.transport.abort()

    async def _pump_down(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tracker = FrameTracker()
        with contextlib.suppress(OSError):
            while True:
                await self._flowing.wait()
                data = await reader.read(4096)
                if not data:
                    break
                tracker.feed(data)
                writer.write(data)
                with contextlib.suppress(OSError):
                    await writer.drain()
        if tracker.at_boundary:
            self.cut_at_boundary += 1
        else:
            self.cut_mid_frame += 1
        # the client must see the stream end where the server's did: flush, then close
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()
