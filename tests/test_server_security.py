"""No secret in code: generated secrets, ``serve`` refusing to start without one, ``--dev``,
the ``token`` command and ``--require-origin``."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest
from server_helpers import SECRET, RawClient, config
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from reactive_aiops.cli import main
from reactive_aiops.cli import serve as cli
from reactive_aiops.server.app import serve_embedded
from reactive_aiops.server.auth import mint_token, verify_token
from reactive_aiops.server.config import ServerConfig, SimulationConfig

QUIET = SimulationConfig(enabled=False)


def test_every_config_without_a_secret_gets_its_own_random_one() -> None:
    a, b = ServerConfig(), ServerConfig()
    assert a.token_secret != b.token_secret
    assert len(a.token_secret.encode()) >= 32
    assert a.token_secret not in repr(a)


@pytest.mark.asyncio
async def test_embedded_server_mints_tokens_for_its_generated_secret() -> None:
    async with serve_embedded(port=0, simulation=QUIET) as server:
        good = RawClient(await connect(server.url))
        reply = await good.connect(server.mint_token("alice", roles=("operator",)))
        assert "connect" in reply
        await good.close()
        # A token signed with any other secret (e.g. a formerly built-in one) is refused.
        forged = mint_token("dev-secret-change-me-0123456789abcdef", "eve", exp=time.time() + 60)
        bad = RawClient(await connect(server.url))
        await bad.send("connect", {"token": forged})
        assert await bad.closed_code() == 3500


def test_serve_without_secret_exits_2_with_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(cli.SECRET_ENV, raising=False)
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert cli.SECRET_ENV in err
    assert "--dev" in err


@pytest.mark.parametrize("argv", [
    ["--dev", "--host", "0.0.0.0"],
    ["--dev", "--host", "192.168.1.7"],
    ["--tls-cert", "cert.pem"],
    ["--tls-cert", "missing.pem", "--tls-key", "missing.pem"],
])
def test_bad_serve_flags_exit_2_with_one_line(
        argv: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(cli.SECRET_ENV, SECRET)
    assert main(["serve", "--port", "0", *argv]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_short_secret_in_the_environment_exits_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(cli.SECRET_ENV, "too-short")
    assert main(["serve", "--port", "0"]) == 2
    assert "32 bytes" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_hosts(host: str) -> None:
    assert cli.is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.1", "example.com"])
def test_non_loopback_hosts(host: str) -> None:
    assert not cli.is_loopback(host)


@pytest.mark.asyncio
async def test_dev_mode_serves_loopback_with_a_random_secret_and_prints_a_token() -> None:
    env = {k: v for k, v in os.environ.items() if k != cli.SECRET_ENV}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reactive_aiops", "serve", "--dev", "--port", "0",
        "--no-simulation", "--log-level", "WARNING", env=env, stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        url = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().split()[-1]
        token_line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert url.startswith("ws://127.0.0.1:")
        assert token_line.startswith("dev token")
        client = RawClient(await connect(url))
        reply = await client.connect(token_line.split()[-1])
        assert "connect" in reply
        # operator role: the command reaches the command service (404: no such anomaly)
        rpc = await client.call("rpc", {"method": "anomaly.acknowledge",
                                        "data": {"command_id": "c1", "anomaly_id": "none"}})
        assert rpc["error"]["code"] == 404
        await client.close()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)


def test_token_command_mints_from_the_environment(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(cli.SECRET_ENV, SECRET)
    before = time.time()
    assert main(["token", "--sub", "alice", "--role", "operator", "--channel", "anomalies",
                 "--channel", "detectors:*", "--ttl", "120"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    claims = verify_token(out.strip(), SECRET, time.time())
    assert claims.sub == "alice"
    assert claims.has_role("operator")
    assert claims.channels == ("anomalies", "detectors:*")
    assert before + 119 <= claims.exp <= time.time() + 121


def test_token_defaults_one_hour_all_channels_no_role(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(cli.SECRET_ENV, SECRET)
    assert main(["token", "--sub", "bob"]) == 0
    claims = verify_token(capsys.readouterr().out.strip(), SECRET, time.time())
    assert claims.channels is None
    assert claims.roles == frozenset()
    assert 3590 <= claims.exp - time.time() <= 3601


def test_token_without_secret_exits_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(cli.SECRET_ENV, raising=False)
    assert main(["token", "--sub", "alice"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1


def test_token_rejects_a_bad_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cli.SECRET_ENV, SECRET)
    for bad in ("0", "-5", "soon"):
        with pytest.raises(SystemExit) as info:
            main(["token", "--sub", "a", "--ttl", bad])
        assert info.value.code == 2


def test_require_origin_flag_sets_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cli.SECRET_ENV, SECRET)
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.config_from(parser.parse_args([])).allow_missing_origin
    assert not cli.config_from(parser.parse_args(["--require-origin"])).allow_missing_origin


@pytest.mark.asyncio
async def test_require_origin_refuses_clients_without_origin() -> None:
    async with serve_embedded(config(allow_missing_origin=False)) as server:
        with pytest.raises(InvalidStatus) as info:
            await connect(server.url)
        assert info.value.response.status_code == 403
        client = RawClient(await connect(server.url, origin="https://ops.example"))  # type: ignore[arg-type]
        assert "connect" in await client.connect(server.mint_token("alice"))
        await client.close()


def test_a_busy_port_exits_2_with_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    monkeypatch.setenv(cli.SECRET_ENV, SECRET)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port), "--no-simulation"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot listen" in err
