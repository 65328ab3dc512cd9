"""Server configuration: one frozen record, every knob with a safe default.

Build it with keyword arguments or from the command line (``reactive_aiops.cli.serve``); pass
it to ``serve_embedded`` or ``EventServer``. Times are seconds, sizes bytes.
"""

from __future__ import annotations

import secrets

import attrs


@attrs.frozen
class SimulationConfig:
    """The simulated source: synthetic metrics run through streaming detectors.

    ``samples_per_second`` is the source's event rate (metric samples fed to detectors; each open
    anomaly publishes on every sample it changes, plus detector changes and health).
    ``seed`` makes the series, incidents and ids reproducible.
    """

    enabled: bool = True
    seed: int = 0
    samples_per_second: float = 20.0
    detectors: int = 6
    #: metric time that passes per sample (so a daily season is visible in minutes of wall time)
    metric_seconds_per_sample: float = 30.0
    #: chance that a sample starts an incident on its metric (when none is running)
    incident_probability: float = 0.004
    incident_min_samples: int = 8
    incident_max_samples: int = 40
    #: how often the health channel is refreshed (wall seconds)
    health_interval: float = 1.0

    @classmethod
    def storm(cls, samples_per_second: float, *, seed: int = 0) -> SimulationConfig:
        """A load profile: incidents almost all the time, so about 0.85 publications per sample
        (at the defaults it is about 0.09). Use it to drive a dashboard at a given event rate."""
        return cls(seed=seed, samples_per_second=samples_per_second, incident_probability=0.1,
                   incident_min_samples=40, incident_max_samples=120)


@attrs.frozen
class ServerConfig:
    """Everything the event server needs; defaults are safe for loopback development.

    ``token_secret`` signs and verifies HS256 connection JWTs. There is no built-in one: left out,
    each config gets a random secret of its own (an embedded server; mint its tokens with
    ``EventServer.mint_token``), so nobody can sign tokens by reading the source. Servers that
    share tokens with other processes pass theirs (``serve`` reads it from the environment).
    ``api_key`` guards
    ``POST /api/publish`` (``None`` disables the endpoint). ``allowed_origins`` is the Origin
    allowlist; ``None`` admits any Origin, and requests with no Origin header (non-browser clients)
    are admitted only when ``allow_missing_origin`` is true.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    path: str = "/connection/websocket"
    token_secret: str = attrs.field(factory=lambda: secrets.token_hex(32), repr=False)

    @token_secret.validator
    def _check_secret(self, attribute: attrs.Attribute[str], value: str) -> None:
        # RFC 7518 3.2: an HS256 key shorter than the hash output is brute-forceable.
        if len(value.encode()) < 32:
            raise ValueError("token_secret must be at least 32 bytes for HS256")

    api_key: str | None = attrs.field(default=None, repr=False)
    allowed_origins: frozenset[str] | None = None
    allow_missing_origin: bool = True
    # limits
    max_message_size: int = 64 * 1024
    max_nesting_depth: int = 32
    max_channels_per_connection: int = 128
    rate_limit_per_second: float = 50.0
    rate_limit_burst: int = 100
    send_queue_size: int = 1024
    auth_timeout: float = 10.0
    #: how long a WebSocket handshake or HTTP request may take, and a closing handshake may wait
    open_timeout: float = 10.0
    close_timeout: float = 5.0
    compression: bool = False
    # heartbeats
    ping_interval: float = 25.0
    pong_timeout: float = 10.0
    # history / recovery
    history_size: int = 1000
    history_ttl: float = 300.0
    stream_ttl: float = 86400.0
    # commands
    command_memory: int = 10_000
    operator_role: str = "operator"
    simulation: SimulationConfig = SimulationConfig()
    #: join the cluster that shares this Redis (``redis://HOST:PORT/DB`` or ``rediss://``);
    #: None runs the in-process memory engine. Credentials never go in the URL: see below.
    redis_url: str | None = None
    redis_username: str | None = None
    redis_password: str | None = attrs.field(default=None, repr=False)
    #: CA certificate (PEM) that signed a ``rediss://`` server's certificate, for private CAs;
    #: None verifies against the system's CAs
    redis_ca_file: str | None = None
    #: PEM certificate chain and private key: both set, the port serves wss:// and https://
    tls_cert: str | None = None
    tls_key: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
