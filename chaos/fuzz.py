"""10,000 fuzzed frames (quick: 1,000) at a live server process.

Frames come from a seeded generator: Centrifuge commands with mutated ids, methods and fields
(huge and negative numbers, wrong types, deep nesting, long strings), truncated JSON, random
binary, invalid UTF-8 in text frames, broken fragmentation, reserved bits and opcodes, unmasked
and oversized control frames, lengths that lie. Most connections first send a valid ``connect``
so the fuzz reaches the authenticated state. Afterwards the server must still run, have printed
no traceback, have let go of every fuzzing socket and still serve a normal client.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import time
from typing import Any

from chaos._harness import (
    LiveClient,
    Publisher,
    Result,
    Secrets,
    ServerProcess,
    settle,
    socket_count,
    tally,
    wait_until,
    workspace,
)
from chaos._wsraw import BINARY, CLOSE, PING, PONG, TEXT, RawSocket, close_code, frame

METHODS = ("connect", "subscribe", "unsubscribe", "publish", "presence", "presence_stats",
           "history", "ping", "send", "rpc", "refresh", "sub_refresh", "bogus")
CHANNELS = ("anomalies", "detectors", "health", "detectors:d1", "", "x" * 300, "$private",
            "anomalies\x00", "ü")
RPC = ("anomaly.acknowledge", "anomaly.resolve", "detector.pause", "detector.resume",
       "aiops.snapshot", "nope")


class Fuzzer:
    """Seeded frame generator."""

    def __init__(self, seed: int, token: str) -> None:
        self.rng = random.Random(seed)
        self.token = token

    def value(self, depth: int = 0) -> Any:
        """A random JSON-ish value."""
        r = self.rng
        pick = r.randrange(12)
        if pick == 0:
            return r.choice([0, -1, 2**53, 2**64, -(2**63), 10**400, 1.5e308, -0.0])
        if pick == 1:
            return r.choice(["", "a" * r.randrange(1, 5000), "\u0000", "\ud7ff\ue000", "💥"])
        if pick == 2:
            return None
        if pick == 3:
            return r.choice([True, False])
        if pick == 4 and depth < 3:
            return [self.value(depth + 1) for _ in range(r.randrange(4))]
        if pick == 5 and depth < 3:
            return {r.choice(["channel", "data", "offset", "epoch", "token", "method",
                              "recover", "limit", "since", "x"]): self.value(depth + 1)
                    for _ in range(r.randrange(4))}
        if pick == 6:
            nested: Any = 1
            for _ in range(r.choice([10, 40, 200, 500])):
                nested = [nested]
            return nested
        if pick == 7:
            return r.choice(CHANNELS)
        if pick == 8:
            return r.choice(RPC)
        return r.randrange(-5, 100)

    def command(self) -> dict[str, Any]:
        """A Centrifuge command with a mutated id, method and body."""
        r = self.rng
        method = r.choice(METHODS)
        body: dict[str, Any] = {}
        if method in ("subscribe", "unsubscribe", "history", "presence", "publish"):
            body["channel"] = r.choice(CHANNELS) if r.random() < 0.8 else self.value()
        if method == "subscribe" and r.random() < 0.5:
            body.update(recover=self.value(), offset=self.value(), epoch=self.value())
        if method == "rpc":
            body["method"] = r.choice(RPC) if r.random() < 0.8 else self.value()
            body["data"] = {"command_id": self.value(), "anomaly_id": self.value(),
                            "detector_id": self.value()}
        if method in ("connect", "refresh"):
            body["token"] = r.choice([self.token, self.token[:-3] + "abc", "", self.value()])
        for _ in range(r.randrange(3)):
            body[r.choice(["data", "limit", "since", "x", "reverse"])] = self.value()
        cmd: dict[str, Any] = {method: body if r.random() < 0.9 else self.value()}
        if r.random() < 0.9:
            cmd["id"] = r.choice([1, r.randrange(1, 1000), 0, -1, 2**64, "1", None, 1.5])
        return cmd

    def frame(self) -> bytes:
        """One fuzzed frame, encoded (masked unless the fuzz is about masking)."""
        r = self.rng
        kind = r.randrange(14)
        if kind <= 4:
            return frame(TEXT, json.dumps(self.command()).encode())
        if kind == 5:  # several commands in one frame, one of them broken
            text = "\n".join(json.dumps(self.command()) for _ in range(r.randrange(2, 6)))
            return frame(TEXT, (text + "\n{\"id\": 9, ").encode())
        if kind == 6:
            text = json.dumps(self.command())
            return frame(TEXT, text[: r.randrange(len(text))].encode())
        if kind == 7:
            return frame(BINARY, r.randbytes(r.randrange(1, 300)))
        if kind == 8:
            if r.random() < 0.5:  # nesting far beyond what json.dumps can produce
                depth = r.choice([1000, 20_000])
                return frame(TEXT, b"{\"id\":1,\"rpc\":{\"data\":" + b"[" * depth + b"]" * depth
                             + b"}}")
            return frame(TEXT, b"{\"id\": 1, \"ping\": \"\xff\xfe\"}")
        if kind == 9:  # fragmentation: a start that never ends, or a continuation alone
            return frame(r.choice([TEXT, 0x0]), b"{\"id\":", fin=False)
        if kind == 10:
            return frame(r.choice([3, 4, 5, 6, 7, 0xB, 0xF]), r.randbytes(8), rsv=r.randrange(8))
        if kind == 11:
            return frame(r.choice([PING, PONG, CLOSE]), r.choice(
                [b"", b"\x03", b"\x0b\xb8bye", b"\x00\x00", r.randbytes(200)]))
        if kind == 12:
            return frame(TEXT, b"{}", mask=False)
        # a header that promises far more than follows
        head = bytes([0x81, 0x80 | 127]) + (2**40).to_bytes(8, "big") + b"\x00\x00\x00\x00"
        return head + b"{\"id\":1"


async def _worker(fuzz: Fuzzer, port: int, frames: int, codes: collections.Counter[str],
                  sent: list[int]) -> None:
    while sent[0] < frames:
        try:
            raw = await RawSocket.open(port)
        except (OSError, ConnectionError, TimeoutError):
            codes["handshake refused"] += 1
            await asyncio.sleep(0.05)
            continue
        if fuzz.rng.random() < 0.7:
            raw.send_json({"id": 1, "connect": {"token": fuzz.token}})
        for _ in range(fuzz.rng.randrange(1, 12)):
            raw.writer.write(fuzz.frame())
            sent[0] += 1
        with contextlib.suppress(OSError):
            await raw.writer.drain()
        got, ended = await raw.read_frames(0.05)
        code = close_code(got)
        codes[str(code) if code is not None else ("reset/EOF" if ended else "open")] += 1
        raw.abort()


async def fuzzed_frames(quick: bool) -> list[Result]:
    """Fuzz a live server (module docstring)."""
    frames = 1000 if quick else 10_000
    result = Result(f"{frames} fuzzed frames")
    keys = Secrets()
    async with workspace() as workdir:
        server = ServerProcess(keys, workdir=workdir)
        await server.start()
        try:
            baseline = socket_count(server.pid)
            result.rss_before = server.rss()
            codes: collections.Counter[str] = collections.Counter()
            sent = [0]
            started = time.monotonic()
            await asyncio.gather(*(_worker(Fuzzer(seed, keys.token()), server.port, frames,
                                           codes, sent) for seed in range(4)))
            elapsed = time.monotonic() - started
            with contextlib.suppress(Exception):
                await wait_until(lambda: socket_count(server.pid) <= baseline, 10,
                                 "fuzz sockets released")
            leftover = socket_count(server.pid) - baseline
            result.rss_after = server.rss()
            alive = server.alive()
            # and a normal client is still served
            client = LiveClient(server.url, keys.token())
            await client.start()
            pub = Publisher(keys, lambda: server.port, "f")
            await pub.stream(100)
            await settle(client, pub.published, 10)
            await client.aclose()
            result.tally = tally(pub.published, client.applied)
            result.note(f"{sent[0]} frames on {sum(codes.values())} connections in "
                        f"{elapsed:.0f} s; server replies: {dict(codes.most_common(6))}; "
                        f"sockets left {leftover}; a normal client then got "
                        f"{result.tally.applied}/{result.tally.published}")
            result.expect("server alive", alive)
            result.expect("no traceback in stderr", server.tracebacks() == 0)
            result.expect("fuzz sockets released", leftover <= 0)
            result.expect("still serves", result.tally.lost == 0 and result.tally.published > 0)
        finally:
            await server.stop()
    return [result]


SCENARIOS = {"fuzz": fuzzed_frames}
