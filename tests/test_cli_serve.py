"""``reactive-aiops serve``: flags and environment to config; SIGTERM closes clients with 3001."""

from __future__ import annotations

import argparse

import pytest
from server_helpers import SECRET, serve_until_sigterm

from reactive_aiops.cli import serve as cli


def test_arguments_and_environment_make_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REACTIVE_AIOPS_TOKEN_SECRET", SECRET)
    monkeypatch.setenv("REACTIVE_AIOPS_API_KEY", "k")
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--port", "0", "--allowed-origin", "https://a", "--rate", "500",
                              "--seed", "9", "--no-simulation", "--history-size", "10"])
    config = cli.config_from(args)
    assert config.port == 0
    assert config.token_secret == SECRET
    assert config.api_key == "k"
    assert config.allowed_origins == frozenset({"https://a"})
    assert config.history_size == 10
    assert (config.simulation.enabled, config.simulation.seed,
            config.simulation.samples_per_second) == (False, 9, 500.0)
    assert not config.compression


@pytest.mark.asyncio
async def test_serve_runs_until_sigterm_and_clients_get_3001() -> None:
    await serve_until_sigterm()


def test_redis_url_without_the_redis_extra_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The extra is looked up, not imported: the Redis client stays inside the Redis engine.
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "redis" else real_find_spec(name, *a))
    monkeypatch.setenv("REACTIVE_AIOPS_TOKEN_SECRET", SECRET)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--port", "0", "--redis-url", "redis://127.0.0.1:6399/0"])
    assert cli.run(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "pip install 'reactive-aiops[redis]'" in err
