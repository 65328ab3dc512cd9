"""Operator commands and tokens under faults.

- ``commands``: 1,000 ``AcknowledgeAnomaly`` commands (quick: 100) in batches of 10; for 30 % of
  the batches the proxy holds the server's replies and cuts the link once the commands reached the
  server, so the client must re-send them (same ``command_id``) after reconnecting. Each anomaly
  must end acknowledged at its version + 1 (applied once), with one echo event each, nothing
  pending and nothing reverted.
- ``token-expiry``: tokens that live 3 s on a live socket, refreshed by the client's
  ``get_token`` while events stream: one connection, no loss. In the full run a second client
  without a token fetcher shows the server closing an unrefreshed connection (3005, ``exp`` +
  25 s grace).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time

from chaos._harness import (
    WS_PATH,
    LiveClient,
    Publisher,
    Result,
    ScenarioError,
    Secrets,
    ServerProcess,
    client_config,
    record,
    settle,
    wait_until,
    workspace,
)
from reactive_aiops.aiops import AcknowledgeAnomaly
from reactive_aiops.aiops.models import AnomalyState
from reactive_aiops.testing import FaultProxy


async def commands_with_cut_replies(quick: bool) -> list[Result]:
    """Commands whose replies are cut (module docstring)."""
    count = 100 if quick else 1000
    batch = 10
    result = Result(f"{count} commands, 30 % of replies cut")
    keys = Secrets()
    rng = random.Random(1204)
    async with workspace() as workdir:
        server = ServerProcess(keys, workdir=workdir)
        await server.start()
        proxy = await FaultProxy("127.0.0.1", server.port).start()
        client: LiveClient | None = None
        try:
            client = LiveClient(f"ws://127.0.0.1:{proxy.port}{WS_PATH}", keys.token())
            await client.start()
            pub = Publisher(keys, lambda: server.port, "m", distinct_anomalies=10**9)
            await pub.stream(count)
            await settle(client, pub.published, 20)
            result.rss_before = server.rss()
            ids = [f"m-a{i}" for i in range(count)]
            store = client.store
            cut_replies = 0
            for first in range(0, count, batch):
                cut = rng.random() < 0.3
                if cut:
                    proxy.delay(0.5, "down")  # replies (and echoes) held in the proxy
                for anomaly in ids[first:first + batch]:
                    store.dispatch(AcknowledgeAnomaly(anomaly, command_id=f"ack-{anomaly}",
                                                      by="chaos"))
                if cut:
                    await asyncio.sleep(0.15)  # the commands reach the server and are applied
                    cut_at = time.monotonic()
                    proxy.cut()
                    proxy.delay(0)
                    cut_replies += batch
                    await client.wait_connected_after(cut_at, 10)
                await wait_until(lambda: not store.state.optimistic.transactions, 20,
                                 "the batch settled")
            await asyncio.sleep(0.3)
            echoes = [e for e in client.applied.get("anomalies", [])
                      if e not in set(pub.published["anomalies"])]
            anomalies = store.state.anomalies
            # anomaly i was published at version i + 1: one acknowledgement makes it i + 2
            once = sum(1 for i, a in enumerate(ids) if a in anomalies
                       and anomalies[a].state is AnomalyState.ACKNOWLEDGED
                       and anomalies[a].version == i + 2)
            result.rss_after = server.rss()
            record(result, pub, client)
            result.note(f"{cut_replies} of {count} replies cut ({cut_replies // batch} cuts); "
                        f"acknowledged, version + 1: {once}; echo events {len(echoes)}; "
                        f"pending {len(store.state.optimistic.transactions)}; reverted "
                        f"{len(client.reverted)} {sorted(set(client.reverted))[:3]}")
            result.expect("each applied exactly once", once == count and len(echoes) == count)
            result.expect("none pending", not store.state.optimistic.transactions)
            result.expect("none reverted", not client.reverted)
            result.expect("lost == 0", result.tally.lost == 0)
            result.expect("dup == 0", result.tally.duplicated == 0)
        finally:
            if client is not None:
                await client.aclose()
            await proxy.aclose()
            await server.stop()
    return [result]


async def token_expiry(quick: bool) -> list[Result]:
    """Short-lived tokens refreshed on a live socket (module docstring)."""
    seconds = 8.0 if quick else 32.0
    ttl = 3.0
    result = Result(f"token expiry ({ttl:.0f} s tokens) with refresh, {seconds:.0f} s")
    keys = Secrets()
    fetched: list[float] = []

    async def get_token() -> str:
        fetched.append(time.monotonic())
        return keys.token(ttl=ttl)

    async with workspace() as workdir:
        server = ServerProcess(keys, workdir=workdir)
        await server.start()
        client: LiveClient | None = None
        control: LiveClient | None = None
        try:
            client = LiveClient(server.url, "", get_token=get_token,
                                config=client_config(refresh_margin=1.0))
            await client.start()
            if not quick:
                control = LiveClient(server.url, keys.token(ttl=ttl))
                await control.start()
            result.rss_before = server.rss()
            started = time.monotonic()
            pub = Publisher(keys, lambda: server.port, "e")
            await pub.stream(int(seconds * 100), rate=100)
            await asyncio.sleep(max(0.0, started + seconds - time.monotonic()))
            await settle(client, pub.published, 10)
            result.rss_after = server.rss()
            record(result, pub, client)
            refreshes = len(fetched) - 1
            result.note(f"tokens fetched {len(fetched)} (1 connect + {refreshes} refreshes); "
                        f"connections {len(client.connected)}; link lost {len(client.lost)}")
            result.expect("lost == 0", result.tally.lost == 0)
            result.expect("dup == 0", result.tally.duplicated == 0)
            result.expect("one connection", len(client.connected) == 1 and not client.lost)
            result.expect("refreshed on the live socket", refreshes >= int(seconds / ttl) - 1)
            if control is not None:
                codes = control.lost_codes
                result.note(f"control client without refresh: closed with {codes[:1]} after "
                            f"{(control.lost[0][0] - started) if control.lost else 0:.1f} s")
                result.expect("unrefreshed connection closed with 3005", codes[:1] == [3005])
        finally:
            for live in (client, control):
                if live is not None:
                    with contextlib.suppress(ScenarioError, TimeoutError):
                        await live.aclose()
            await server.stop()
    return [result]


SCENARIOS = {"commands": commands_with_cut_replies, "token-expiry": token_expiry}
