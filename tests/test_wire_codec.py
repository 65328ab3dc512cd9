"""The wire codec: exact shapes the SDKs rely on, round trips, and garbage -> typed errors only."""

from __future__ import annotations

import contextlib
import json
from typing import Any
from unittest import mock

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_aiops import wire
from reactive_aiops.wire import (
    ClientInfo,
    Command,
    ConnectRequest,
    ConnectResult,
    Disconnect,
    Error,
    FrameError,
    HistoryRequest,
    HistoryResult,
    Join,
    Leave,
    Message,
    Ping,
    Pong,
    PresenceRequest,
    PresenceResult,
    PresenceStatsRequest,
    PresenceStatsResult,
    ProtocolError,
    Publication,
    PublishRequest,
    PublishResult,
    Push,
    RefreshPush,
    RefreshRequest,
    RefreshResult,
    Reply,
    RPCRequest,
    RPCResult,
    SendRequest,
    StreamPosition,
    SubRefreshRequest,
    SubRefreshResult,
    SubscribePush,
    SubscribeRequest,
    SubscribeResult,
    UnsubscribePush,
    UnsubscribeRequest,
    UnsubscribeResult,
    decode_commands,
    decode_replies,
    encode_commands,
    encode_replies,
)

# --- strategies (kept in this one module) ----------------------------------------------------

json_scalars = (
    st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
data = st.none() | json_values
text = st.text(max_size=10)
uint = st.integers(0, 2**64 - 1)
uint32 = st.integers(1, 2**32 - 1)

client_info = st.builds(ClientInfo, user=text, client=text, conn_info=data, chan_info=data)
publication = st.builds(
    Publication,
    data=data,
    info=st.none() | client_info,
    offset=uint,
    tags=st.dictionaries(text, text, max_size=3),
)
subscribe_request = st.builds(
    SubscribeRequest,
    channel=text,
    token=text,
    recover=st.booleans(),
    epoch=text,
    offset=uint,
    data=data,
    positioned=st.booleans(),
    recoverable=st.booleans(),
    join_leave=st.booleans(),
    delta=text,
    flag=st.integers(0, 3),
)
requests = st.one_of(
    st.builds(
        ConnectRequest,
        token=text,
        data=data,
        subs=st.dictionaries(text, subscribe_request, max_size=2),
        name=text,
        version=text,
    ),
    subscribe_request,
    st.builds(UnsubscribeRequest, channel=text),
    st.builds(PublishRequest, channel=text, data=data),
    st.builds(PresenceRequest, channel=text),
    st.builds(PresenceStatsRequest, channel=text),
    st.builds(
        HistoryRequest,
        channel=text,
        limit=st.integers(-1, 100),
        since=st.none() | st.builds(StreamPosition, offset=uint, epoch=text),
        reverse=st.booleans(),
    ),
    st.builds(RPCRequest, data=data, method=text),
    st.builds(RefreshRequest, token=text),
    st.builds(SubRefreshRequest, channel=text, token=text),
)
commands = st.one_of(
    st.builds(Command, id=uint32, request=requests),
    st.builds(Command, id=st.just(0), request=st.builds(SendRequest, data=data)),
    st.just(Pong()),
)
subscribe_result = st.builds(
    SubscribeResult,
    expires=st.booleans(),
    ttl=uint,
    recoverable=st.booleans(),
    epoch=text,
    publications=st.lists(publication, max_size=3).map(tuple),
    recovered=st.booleans(),
    offset=uint,
    positioned=st.booleans(),
    data=data,
    was_recovering=st.booleans(),
    delta=st.booleans(),
)
results = st.one_of(
    st.builds(
        ConnectResult,
        client=text,
        version=text,
        expires=st.booleans(),
        ttl=uint,
        data=data,
        subs=st.dictionaries(text, subscribe_result, max_size=2),
        ping=st.integers(0, 60),
        pong=st.booleans(),
        session=text,
        node=text,
        time=uint,
    ),
    subscribe_result,
    st.just(UnsubscribeResult()),
    st.just(PublishResult()),
    st.builds(PresenceResult, presence=st.dictionaries(text, client_info, max_size=2)),
    st.builds(PresenceStatsResult, num_clients=uint, num_users=uint),
    st.builds(
        HistoryResult,
        publications=st.lists(publication, max_size=3).map(tuple),
        epoch=text,
        offset=uint,
    ),
    st.builds(RPCResult, data=data),
    st.builds(RefreshResult, client=text, version=text, expires=st.booleans(), ttl=uint),
    st.builds(SubRefreshResult, expires=st.booleans(), ttl=uint),
    st.builds(Error, code=st.integers(0, 5000), message=text, temporary=st.booleans()),
)
push_bodies = st.one_of(
    publication,
    st.builds(Join, info=client_info),
    st.builds(Leave, info=client_info),
    st.builds(UnsubscribePush, code=st.integers(0, 3000), reason=text),
    st.builds(
        SubscribePush,
        recoverable=st.booleans(),
        epoch=text,
        offset=uint,
        positioned=st.booleans(),
        data=data,
    ),
    st.builds(Message, data=data),
    st.builds(Disconnect, code=st.integers(0, 5000), reason=text, reconnect=st.booleans()),
    st.builds(RefreshPush, expires=st.booleans(), ttl=uint),
)
server_messages = st.one_of(
    st.builds(Reply, id=uint32, result=results),
    st.builds(Push, channel=text, body=push_bodies),
    st.just(Ping()),
)


# --- round trips -----------------------------------------------------------------------------


@given(st.lists(commands, min_size=1, max_size=5))
def test_commands_round_trip(msgs: list[Any]) -> None:
    frame = encode_commands(msgs)
    assert decode_commands(frame) == msgs


@given(st.lists(server_messages, min_size=1, max_size=5))
def test_replies_round_trip(msgs: list[Any]) -> None:
    frame = encode_replies(msgs)
    assert decode_replies(frame) == msgs
    for line in frame.split("\n"):  # each message is one compact JSON line
        json.loads(line)


@given(server_messages)
def test_encode_reply_is_a_one_message_frame(msg: Any) -> None:
    assert wire.encode_reply(msg) == encode_replies([msg])


# --- exact shapes the SDKs depend on ---------------------------------------------------------


def test_empty_results_keep_their_key_and_zero_values_are_omitted() -> None:
    frame = encode_replies(
        [
            Reply(4, UnsubscribeResult()),
            Reply(5, PublishResult()),
            Reply(6, SubscribeResult()),
            Reply(7, ConnectResult(client="c1", ping=25, pong=True)),
            Reply(8, Error(109, "token expired")),
        ]
    )
    assert frame.split("\n") == [
        '{"id":4,"unsubscribe":{}}',
        '{"id":5,"publish":{}}',
        '{"id":6,"subscribe":{}}',
        '{"id":7,"connect":{"client":"c1","ping":25,"pong":true}}',
        '{"id":8,"error":{"code":109,"message":"token expired"}}',
    ]


def test_push_and_ping_shapes() -> None:
    frame = encode_replies(
        [Push("news", Publication(data={"a": 1}, offset=11)), Ping(), Push("", Message(data=[1]))]
    )
    assert frame == (
        '{"push":{"channel":"news","pub":{"data":{"a":1},"offset":11}}}\n{}\n'
        '{"push":{"message":{"data":[1]}}}'
    )


def test_command_shapes_send_and_pong_have_no_id() -> None:
    frame = encode_commands(
        [
            Command(3, SubscribeRequest(channel="a", recover=True, epoch="e", offset=7)),
            Pong(),
            Command(0, SendRequest(data="hi")),
            Command(4, RPCRequest(method="anomaly.acknowledge", data={"anomaly_id": "x"})),
        ]
    )
    assert frame.split("\n") == [
        '{"id":3,"subscribe":{"channel":"a","recover":true,"epoch":"e","offset":7}}',
        "{}",
        '{"send":{"data":"hi"}}',
        '{"id":4,"rpc":{"data":{"anomaly_id":"x"},"method":"anomaly.acknowledge"}}',
    ]


def test_decodes_what_centrifuge_js_sends_on_connect() -> None:
    # centrifuge-js batches connect and subscribes in one frame, with keys we do not model.
    frame = (
        '{"id":1,"connect":{"token":"t","name":"js","version":"5.8.0","headers":{},"flag":0}}\n'
        '{"id":2,"subscribe":{"channel":"anomalies","flag":0,"tf":{"x":1},"recover":true,'
        '"epoch":"ep","offset":12}}\n'
    )
    cmds = decode_commands(frame)
    assert cmds == [
        Command(1, ConnectRequest(token="t", name="js", version="5.8.0")),
        Command(2, SubscribeRequest(channel="anomalies", recover=True, epoch="ep", offset=12)),
    ]


def test_decodes_a_centrifugo_connect_reply_with_unknown_keys() -> None:
    frame = '{"id":9,"connect":{"client":"x","version":"6.0","ping":25,"pong":true,"future":1}}'
    assert decode_replies(frame) == [
        Reply(9, ConnectResult(client="x", version="6.0", ping=25, pong=True))
    ]


def test_unknown_push_type_is_a_protocol_error_with_reason() -> None:
    with pytest.raises(ProtocolError, match="exactly one of"):
        decode_replies('{"push":{"channel":"a","connection":{}}}')


# --- malformed input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "exc", "fragment"),
    [
        ("", FrameError, "empty line"),
        ("{}\n\n{}", FrameError, "empty line"),
        ("not json", FrameError, "invalid JSON"),
        ("[1]", FrameError, "JSON object"),
        ('{"id":-1,"rpc":{}}', ProtocolError, "uint32"),
        ('{"id":4294967296,"rpc":{}}', ProtocolError, "uint32"),
        ('{"id":true,"rpc":{}}', ProtocolError, "uint32"),
        ('{"id":1}', ProtocolError, "exactly one"),
        ('{"id":1,"rpc":{},"connect":{}}', ProtocolError, "exactly one"),
        ('{"id":1,"connect":[]}', ProtocolError, "JSON object"),
        ('{"id":1,"connect":{"ping":"25"}}', ProtocolError, "integer"),
        ('{"id":1,"connect":{"ping":2.5}}', ProtocolError, "integer"),
        ('{"id":1,"connect":{"pong":1}}', ProtocolError, "boolean"),
        ('{"id":1,"connect":{"client":5}}', ProtocolError, "string"),
        ('{"id":1,"subscribe":{"publications":"abc"}}', ProtocolError, "array"),
        ('{"id":1,"subscribe":{"offset":-1}}', ProtocolError, "uint64"),  # as Go's uint64
        ('{"error":{"code":1}}', ProtocolError, "without an id"),
        ('{"push":[]}', ProtocolError, "push"),
        ('{"push":{"channel":1,"pub":{}}}', ProtocolError, "channel"),
    ],
)
def test_bad_server_frames_raise_typed_errors(
    frame: str, exc: type[Exception] | None, fragment: str
) -> None:
    if exc is None:
        decode_replies(frame)
        return
    with pytest.raises(exc, match=fragment) as info:
        decode_replies(frame)
    assert isinstance(info.value, ProtocolError)
    assert fragment in info.value.reason


@pytest.mark.parametrize(
    ("frame", "fragment"),
    [
        ('{"rpc":{}}', "without an id"),
        ('{"id":2,"send":{}}', "send must have no id"),
        ('{"id":2,"subscribe":{"channel":["a"]}}', "string"),
        ('{"id":2,"history":{"since":5}}', "JSON object"),
    ],
)
def test_bad_client_frames_raise_typed_errors(frame: str, fragment: str) -> None:
    with pytest.raises(ProtocolError, match=fragment):
        decode_commands(frame)


@pytest.mark.parametrize("offset", [-1, -(2**63), 2**64])
def test_a_recovery_offset_outside_uint64_is_refused_both_ways(offset: int) -> None:
    # a negative offset is as wrong as 2**64: both ends refuse it at decode
    recover = (
        f'{{"id":2,"subscribe":{{"channel":"a","recover":true,"epoch":"e","offset":{offset}}}}}'
    )
    since = f'{{"id":3,"history":{{"channel":"a","since":{{"offset":{offset},"epoch":"e"}}}}}}'
    for frame in (recover, since):
        with pytest.raises(ProtocolError):
            decode_commands(frame)
    for frame in (
        f'{{"id":1,"subscribe":{{"offset":{offset},"epoch":"e"}}}}',
        f'{{"push":{{"channel":"a","pub":{{"data":{{}},"offset":{offset},"tags":{{}}}}}}}}',
    ):
        with pytest.raises(ProtocolError):
            decode_replies(frame)
    assert decode_commands(recover.replace(str(offset), "18446744073709551615"))


def test_error_keeps_the_messages_decoded_before_the_bad_line() -> None:
    frame = '{"id":1,"rpc":{"method":"m"}}\n{}\n{"id":2,"nope":{}}\n{"id":3,"rpc":{}}'
    with pytest.raises(ProtocolError) as info:
        decode_commands(frame)
    assert info.value.index == 2
    assert info.value.decoded == (Command(1, RPCRequest(method="m")), Pong())


def test_frame_guards() -> None:
    with pytest.raises(FrameError, match="exceeds"):
        decode_replies("{}" + " " * 100, max_size=50)
    with pytest.raises(FrameError, match="messages"):
        decode_commands("\n".join(["{}"] * 5), max_messages=4)
    with pytest.raises(FrameError, match="text"):
        decode_commands(b"{}")
    assert decode_replies("{}\n") == [Ping()]  # one trailing newline is tolerated


def test_unknown_keys_in_command_without_method_is_a_pong() -> None:
    assert decode_commands('{"extra":1}') == [Pong()]


def test_deep_nesting_is_a_frame_error_not_a_crash() -> None:
    with pytest.raises(ProtocolError):
        decode_replies('{"push":{"message":{"data":' + "[" * 100_000 + "]" * 100_000 + "}}}")


def test_message_validators() -> None:
    with pytest.raises(ValueError, match="only send"):
        Command(0, RPCRequest())
    with pytest.raises(ValueError, match="only send"):
        Command(5, SendRequest())
    with pytest.raises(ValueError, match="uint32"):
        Command(2**32, RPCRequest())
    with pytest.raises(ValueError, match="reply id"):
        Reply(0, RPCResult())
    assert Reply(1, Error(100)).error == Error(100)
    assert Reply(1, RPCResult()).error is None


def test_every_request_and_result_class_is_registered() -> None:
    from reactive_aiops.wire import messages

    req = {c for c in vars(messages).values() if attrs.has(c) and c.__name__.endswith("Request")}
    res = {c for c in vars(messages).values() if attrs.has(c) and c.__name__.endswith("Result")}
    assert req - {StreamPosition} == set(messages.REQUEST_METHODS)
    assert res == set(messages.RESULT_METHODS)


# --- garbage never raises anything but ProtocolError ------------------------------------------

keys = st.sampled_from(
    [
        "id",
        "push",
        "error",
        "channel",
        "pub",
        "connect",
        "subscribe",
        "rpc",
        "data",
        "offset",
        "publications",
        "subs",
        "info",
        "send",
        "since",
        "presence",
        "code",
        "tags",
        "join",
    ]
)
garbage_json = st.recursive(
    json_scalars | st.none(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(keys | st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=15,
)


@settings(max_examples=300)
@given(st.lists(garbage_json, min_size=1, max_size=3))
def test_garbage_json_raises_only_protocol_error(objs: list[Any]) -> None:
    frame = "\n".join(json.dumps(o) for o in objs)
    for decode in (decode_replies, decode_commands):
        with contextlib.suppress(ProtocolError):
            decode(frame)


@given(st.text(max_size=60))
def test_garbage_text_raises_only_protocol_error(frame: str) -> None:
    for decode in (decode_replies, decode_commands):
        with contextlib.suppress(ProtocolError):
            decode(frame)


# -- the publication fast path gives what the converter path gives ----------------------------

_PUB_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**65), 2**65), st.floats(allow_nan=False),
    st.text(max_size=3), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
_PUB_KEYS = st.sampled_from(["data", "offset", "info", "tags", "delta", "x"])
_PUSH_KEYS = st.sampled_from(["channel", "pub", "join", "x"])


@settings(max_examples=300, deadline=None)
@given(
    pub=st.dictionaries(_PUB_KEYS, _PUB_VALUES, max_size=3),
    push_extra=st.dictionaries(_PUSH_KEYS, _PUB_VALUES, max_size=1),
    channel=st.one_of(st.text(max_size=3), st.integers()),
    top_extra=st.dictionaries(st.sampled_from(["id", "y"]), st.integers(0, 3), max_size=1),
)
def test_publication_fast_path_matches_the_converter_path(
    pub: dict[str, Any],
    push_extra: dict[str, Any],
    channel: Any,
    top_extra: dict[str, Any],
) -> None:
    from reactive_aiops.wire import codec

    line = json.dumps({"push": {"channel": channel, "pub": pub, **push_extra}, **top_extra})

    def decoded() -> Any:
        try:
            return decode_replies(line)
        except wire.ProtocolError as exc:
            return ("error", exc.reason)

    fast = decoded()
    with mock.patch.object(codec, "_fast_publication", return_value=None):
        slow = decoded()
    assert fast == slow
    if isinstance(fast, list):
        assert [type(m) for m in fast] == [type(m) for m in slow]


# -- orjson parses, the stdlib decides what orjson refuses ------------------------------------

def _json_values(*, finite: bool) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**70), 2**70)  # beyond 64 bits: orjson refuses, json.loads does not
        # NaN and infinities unless finite: the stdlib reads its own NaN/Infinity
        | st.floats(allow_nan=not finite, allow_infinity=not finite)
        | st.text(max_size=4),  # lone surrogates included (json.dumps escapes them)
        lambda inner: st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3),
        max_leaves=12,
    )


_ANY_JSON = _json_values(finite=False)


def _same(a: Any, b: Any) -> bool:
    # NaN != NaN: compare through the stdlib's own rendering instead
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@settings(max_examples=300, deadline=None)
@given(data=_ANY_JSON, compact=st.booleans())
def test_publication_data_decodes_as_the_stdlib_decodes_it(data: Any, compact: bool) -> None:
    separators = (",", ":") if compact else (", ", ": ")
    line = json.dumps({"push": {"channel": "c", "pub": {"data": data, "offset": 1}}},
                      separators=separators)
    (push,) = decode_replies(line)
    assert isinstance(push, wire.Push)
    assert isinstance(push.body, wire.Publication)
    assert _same(push.body.data, json.loads(line)["push"]["pub"]["data"])


@pytest.mark.parametrize(
    "line",
    ['{"push":{"channel":"c","pub":{"data":NaN', "[1,]", '{"a":1}x', "", "\ufeff{}"],
)
def test_what_both_parsers_refuse_is_a_frame_error(line: str) -> None:
    with pytest.raises(wire.FrameError):
        decode_replies(line)


# -- encoding: the publication fast path, and what JSON cannot say ----------------------------


@settings(max_examples=200, deadline=None)
@given(
    data=_json_values(finite=True),
    offset=uint,
    channel=st.text(max_size=3),
    tags=st.dictionaries(st.text(max_size=2), st.text(max_size=2), max_size=1),
)
def test_publication_encode_fast_path_matches_the_converter_path(
    data: Any, offset: int, channel: str, tags: dict[str, str]
) -> None:
    from reactive_aiops.wire import codec

    push = Push(channel, Publication(data=data, offset=offset, tags=tags))
    via_converter = codec._join([{
        "push": {
            **({"channel": channel} if channel else {}),
            "pub": codec.converter.unstructure(push.body),
        }
    }])
    encoded = wire.encode_reply(push)
    assert json.loads(encoded) == json.loads(via_converter)
    assert decode_replies(encoded) == [push]
    if not tags:  # the server's per-publication frame: no tags, no info
        assert wire.encode_publication_push(channel, data, offset) == encoded


def test_non_finite_floats_are_encoded_as_null_not_as_invalid_json() -> None:
    frame = wire.encode_reply(Push("c", Publication(data={"x": float("nan"), "y": float("inf")})))
    assert json.loads(frame) == {"push": {"channel": "c", "pub": {"data": {"x": None, "y": None}}}}


def test_a_lone_surrogate_is_encoded_by_the_stdlib_fallback() -> None:
    frame = wire.encode_reply(Push("c", Publication(data="\ud800", offset=1)))
    assert json.loads(frame)["push"]["pub"] == {"data": "\ud800", "offset": 1}
