"""A raw WebSocket client over asyncio streams: the handshake, hand-built frames (valid or not),
and a parser for what the server sends. For the slow reader and the fuzzer, which must do what
no well-behaved library would (stop reading, send broken frames)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class RawSocket:
    """One raw WebSocket connection (client side: frames are masked unless told otherwise)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, path: str = "/connection/websocket", *,
                   rcvbuf: int | None = None, within: float = 5.0) -> RawSocket:
        """Connect and complete the handshake; raises ``ConnectionError`` if refused."""
        sock = socket.socket()
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        async with asyncio.timeout(within):
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                          "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                          ).encode())
            head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            writer.close()
            raise ConnectionError(f"handshake refused: {head[:40]!r}")
        return cls(reader, writer)

    def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True,
                   rsv: int = 0) -> None:
        """Write one frame (any opcode, any flags, masked or not)."""
        self.writer.write(frame(opcode, payload, fin=fin, mask=mask, rsv=rsv))

    def send_json(self, message: dict[str, Any]) -> None:
        """A text frame with a JSON command."""
        self.send_frame(TEXT, json.dumps(message).encode())

    async def read_frames(self, seconds: float) -> tuple[list[tuple[int, bytes]], bool]:
        """Read for up to ``seconds``; returns the complete frames and whether the stream ended."""
        data = b""
        ended = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                async with asyncio.timeout(left):
                    chunk = await self.reader.read(1 << 16)
            except TimeoutError:
                break
            except OSError:
                ended = True
                break
            if not chunk:
                ended = True
                break
            data += chunk
        return parse_frames(data), ended

    def abort(self) -> None:
        """Drop the connection (RST)."""
        self.writer.transport.abort()


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True,
          rsv: int = 0) -> bytes:
    """Encode one WebSocket frame."""
    head = bytes([(0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Complete (opcode, payload) frames in ``data`` (server frames are not masked)."""
    out = []
    i = 0
    while i + 2 <= len(data):
        opcode, code = data[i] & 0xF, data[i + 1] & 0x7F
        j = i + 2
        if code == 126:
            code, j = int.from_bytes(data[j:j + 2], "big"), j + 2
        elif code == 127:
            code, j = int.from_bytes(data[j:j + 8], "big"), j + 8
        if data[i + 1] & 0x80:
            j += 4
        if j + code > len(data):
            break
        out.append((opcode, data[j:j + code]))
        i = j + code
    return out


def close_code(frames: list[tuple[int, bytes]]) -> int | None:
    """The code of the first close frame, if any."""
    for opcode, payload in frames:
        if opcode == CLOSE and len(payload) >= 2:
            return int.from_bytes(payload[:2], "big")
    return None
