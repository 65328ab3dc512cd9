"""Encode and decode Centrifuge v2 JSON frames.

A frame is one WebSocket *text* message holding one or more JSON objects separated by ``\\n``.
Client side: ``encode_commands`` / ``decode_replies``. Server side: ``decode_commands`` /
``encode_replies``. Bodies go through one dedicated cattrs converter (strict primitive hooks, zero
values omitted, unknown keys ignored); the envelope (``id`` + one method key, ``push``, ``{}``) is
dispatched by hand because its tag is the *name of a key*, which no cattrs tagged-union strategy
models. Decoding never raises anything but ``ProtocolError`` / ``FrameError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypeVar, get_args, get_origin

import attrs
import cattrs
import msgspec
from cattrs.gen import make_dict_structure_fn

from reactive_aiops.wire.errors import FrameError, ProtocolError
from reactive_aiops.wire.messages import (
    MAX_ID,
    MAX_OFFSET,
    PUSH_TYPES,
    REQUEST_METHODS,
    RESULT_METHODS,
    ClientMessage,
    Command,
    Error,
    Ping,
    Pong,
    Publication,
    Push,
    Reply,
    ServerMessage,
)

#: Default frame size guard (characters); both directions. Matches the client's websockets max_size.
#: 16 MiB: a snapshot of a long-running server (thousands of anomalies) must fit in one reply.
DEFAULT_MAX_FRAME = 16 << 20
#: A frame may batch many messages, but not without bound (a server parses them all at once).
DEFAULT_MAX_MESSAGES = 1000

_T = TypeVar("_T")
_UINT64 = 2**64
_INT64_MIN = -(2**63)

# --- the converter ---------------------------------------------------------------------------


def _structure_str(value: object, _: object) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _structure_int(value: object, _: object) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    if not _INT64_MIN <= value < _UINT64:
        raise ValueError(f"integer out of range: {value}")
    return value


def _structure_bool(value: object, _: object) -> bool:
    if type(value) is not bool:
        raise TypeError(f"expected a boolean, got {type(value).__name__}")
    return value


def _structure_any(value: object, _: object) -> object:
    return value


def _is_homogeneous_tuple(tp: Any) -> bool:
    args = get_args(tp)
    return get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(
        omit_if_default=True, forbid_extra_keys=False, detailed_validation=False
    )
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook_func(lambda t: t is Any, _structure_any)
    # Embedded JSON passes through as is: no copy, no runtime-type dispatch on the hot path.
    conv.register_unstructure_hook_func(lambda t: t is Any, lambda v: v)

    def attrs_factory(cls: type[_T]) -> Callable[[object, object], _T]:
        inner = make_dict_structure_fn(cls, conv)

        def structure(value: object, _: object) -> _T:
            # cattrs would accept any container supporting ``in``; the schema says object.
            if type(value) is not dict:
                raise TypeError(f"{cls.__name__} must be a JSON object")
            return inner(value, cls)

        return structure

    def tuple_factory(tp: Any) -> Callable[[object, object], tuple[Any, ...]]:
        (item,) = get_args(tp)[:1]

        def structure(value: object, _: object) -> tuple[Any, ...]:
            if type(value) is not list:  # never iterate a string or an object
                raise TypeError("expected a JSON array")
            return tuple(conv.structure(v, item) for v in value)

        return structure

    conv.register_structure_hook_factory(attrs.has, attrs_factory)
    conv.register_structure_hook_factory(_is_homogeneous_tuple, tuple_factory)
    return conv


#: The wire's one cattrs converter. Not the global one: nothing else may change its hooks.
converter = _make_converter()

_REQUEST_BY_KEY = {key: cls for cls, key in REQUEST_METHODS.items()}
_RESULT_BY_KEY = {key: cls for cls, key in RESULT_METHODS.items()}
_PUSH_BY_KEY = {key: cls for cls, key in PUSH_TYPES.items()}
_DECODE_FAULTS = (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError)


# --- framing ---------------------------------------------------------------------------------


_decode_json = msgspec.json.Decoder().decode


def _loads(line: str) -> Any:
    """``json.loads(line)``, parsed by msgspec when it can: it reads standard JSON exactly as
    the stdlib does (big integers included), and whatever it refuses (``NaN``, numbers out of
    the float range, lone surrogates, invalid JSON) goes to ``json.loads`` itself, which
    returns or raises exactly as usual."""
    try:
        return _decode_json(line)
    except msgspec.DecodeError:
        return json.loads(line)


def _split(text: object, max_size: int, max_messages: int) -> list[dict[str, Any]]:
    if not isinstance(text, str):
        raise FrameError(f"frame must be text, got {type(text).__name__} (JSON uses text frames)")
    if len(text) > max_size:
        raise FrameError(f"frame of {len(text)} characters exceeds the {max_size} limit")
    if text.endswith("\n"):  # one trailing newline is tolerated, as by the Go decoder
        text = text[:-1]
    lines = text.split("\n")
    if len(lines) > max_messages:
        raise FrameError(f"frame holds {len(lines)} messages, limit {max_messages}")
    objects: list[dict[str, Any]] = []
    for index, line in enumerate(lines):
        try:
            obj = _loads(line)
        except (ValueError, RecursionError) as exc:
            reason = "empty line in frame" if not line.strip() else f"invalid JSON: {exc}"
            raise FrameError(reason, index=index) from exc
        if type(obj) is not dict:
            kind = type(obj).__name__
            raise FrameError(f"message must be a JSON object, got {kind}", index=index)
        objects.append(obj)
    return objects


def _decode_frame(
    text: object, max_size: int, max_messages: int, decode: Callable[[dict[str, Any]], _T]
) -> list[_T]:
    """Split a frame and ``decode`` each message; a ``ProtocolError`` names the message's index
    and carries the ones decoded before it."""
    out: list[_T] = []
    for index, obj in enumerate(_split(text, max_size, max_messages)):
        try:
            out.append(decode(obj))
        except ProtocolError as exc:
            raise ProtocolError(exc.reason, decoded=out, index=index) from exc
    return out


_encode_json = msgspec.json.Encoder().encode


def _dumps(obj: Any) -> str:
    """Compact JSON text of ``obj``, by msgspec (8x faster than the stdlib's encoder here).

    Non-finite floats become ``null`` as in JavaScript's ``JSON.stringify`` (JSON has no NaN;
    the stdlib would write ``NaN``, which no other JSON parser accepts). What msgspec cannot
    encode (a lone surrogate in a string, an unsupported type) goes to ``json.dumps``, which
    encodes or raises as usual.
    """
    try:
        return _encode_json(obj).decode()
    except (TypeError, UnicodeEncodeError):
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _join(objects: Iterable[dict[str, Any]]) -> str:
    return "\n".join([_dumps(o) for o in objects])


def _get_id(obj: dict[str, Any]) -> int:
    value = obj.get("id", 0)
    if type(value) is not int or not 0 <= value <= MAX_ID:
        raise ProtocolError(f"id must be a uint32, got {value!r}")
    return value


def _one_key(obj: dict[str, Any], table: dict[str, type[Any]], what: str) -> tuple[str, type[Any]]:
    found = [key for key in obj if key in table]
    if len(found) != 1:
        detail = "none" if not found else ", ".join(found)
        raise ProtocolError(f"{what} must carry exactly one of {sorted(table)}; found {detail}")
    return found[0], table[found[0]]


def _body(value: object, cls: type[_T], where: str) -> _T:
    try:
        return converter.structure(value, cls)
    except _DECODE_FAULTS as exc:
        raise ProtocolError(f"bad {where}: {exc}") from exc


# --- client side -----------------------------------------------------------------------------


def _command_obj(message: ClientMessage) -> dict[str, Any]:
    if isinstance(message, Pong):
        return {}
    key = REQUEST_METHODS[type(message.request)]
    obj: dict[str, Any] = {"id": message.id} if message.id else {}
    obj[key] = converter.unstructure(message.request)
    return obj


def encode_commands(messages: Iterable[ClientMessage]) -> str:
    """Encode client messages into one text frame (send it as a WebSocket text message)."""
    return _join(_command_obj(m) for m in messages)


def _fast_publication(obj: dict[str, Any]) -> Push | None:
    """The common publication push ``{"push": {"channel": c, "pub": {"data": d, "offset": n}}}``
    built directly; ``None`` for anything else (any other key or type), which then takes the
    full converter path. Gives exactly what that path gives for the shapes it accepts."""
    if len(obj) != 1:
        return None
    push = obj.get("push")
    if type(push) is not dict or len(push) != 2:
        return None
    channel = push.get("channel")
    pub = push.get("pub")
    if type(channel) is not str or type(pub) is not dict:
        return None
    size = len(pub)
    offset = pub.get("offset", 0)
    if type(offset) is not int or not 0 <= offset < _UINT64:
        return None
    if "data" in pub:
        if size != (2 if "offset" in pub else 1):
            return None
        return Push(channel, Publication(data=pub["data"], offset=offset))
    if size != (1 if "offset" in pub else 0):
        return None
    return Push(channel, Publication(offset=offset))


def _decode_server_message(obj: dict[str, Any]) -> ServerMessage:
    fast = _fast_publication(obj)
    if fast is not None:
        return fast
    msg_id = _get_id(obj)
    if msg_id:
        if "error" in obj:
            return Reply(msg_id, _body(obj["error"], Error, "error"))
        key, cls = _one_key(obj, _RESULT_BY_KEY, "reply")
        return Reply(msg_id, _body(obj[key], cls, f"{key} result"))
    if "push" in obj:
        push = obj["push"]
        if type(push) is not dict:
            raise ProtocolError("push must be a JSON object")
        channel = push.get("channel", "")
        if type(channel) is not str:
            raise ProtocolError("push channel must be a string")
        key, cls = _one_key(push, _PUSH_BY_KEY, "push")
        return Push(channel, _body(push[key], cls, f"{key} push"))
    if "error" in obj:
        raise ProtocolError("error reply without an id")
    return Ping()


#: A stream offset's lower bound; the upper one (a uint64, beyond msgspec's int64 bounds) is
#: checked after the decode: a bigger one takes the full path, which reports it.
_Offset = Annotated[int, msgspec.Meta(ge=0)]


class _PubBody(msgspec.Struct, forbid_unknown_fields=True):
    data: Any = None
    offset: _Offset = 0


class _PushBody(msgspec.Struct, forbid_unknown_fields=True):
    channel: str
    pub: _PubBody


class _PushLine(msgspec.Struct, forbid_unknown_fields=True):
    push: _PushBody


_decode_push_line = msgspec.json.Decoder(_PushLine).decode


def decode_replies(
    text: object, *, max_size: int = DEFAULT_MAX_FRAME, max_messages: int = DEFAULT_MAX_MESSAGES
) -> list[ServerMessage]:
    """Decode a server text frame into replies, pushes and pings, in frame order.

    Raises ``FrameError`` (bad framing) or ``ProtocolError`` (bad schema); ``exc.decoded`` holds
    the messages before the bad one, which the caller should still process.
    """
    if type(text) is str and len(text) <= max_size:
        if "\n" not in text:  # the per-event frame
            one = decode_publication_push(text)
            if one is not None:
                return [Push(one[0], one[1])]
        elif max_messages >= DEFAULT_MAX_MESSAGES:
            fast = decode_publications(text)
            if fast is not None:
                return [Push(channel, pub) for channel, pub in fast]
    return _decode_frame(text, max_size, max_messages, _decode_server_message)


def decode_publication_push(text: str) -> tuple[str, Publication] | None:
    """``(channel, publication)`` when ``text`` is exactly one publication push
    ``{"push": {"channel": c, "pub": {"data": d, "offset": n}}}`` (the per-event frame), by a
    single typed msgspec decode with its checks in C; ``None`` for anything else (more than one
    line, other keys, ``info``/``tags``, a reply, bad JSON), which :func:`decode_replies`
    then decides and reports. Where it answers, it gives what ``decode_replies`` gives. The
    caller bounds the frame size."""
    if "\n" in text:
        return None
    try:
        line = _decode_push_line(text)
    except msgspec.MsgspecError:
        return None
    push = line.push
    pub = push.pub
    if pub.offset > MAX_OFFSET:
        return None
    # positional: attrs binds keywords measurably slower, and this runs once per event
    return push.channel, Publication(pub.data, None, pub.offset)


class _RawPubBody(msgspec.Struct, forbid_unknown_fields=True):
    data: msgspec.Raw = msgspec.Raw()
    offset: _Offset = 0


class _RawPushBody(msgspec.Struct, forbid_unknown_fields=True):
    channel: str
    pub: _RawPubBody


class _RawPushLine(msgspec.Struct, forbid_unknown_fields=True):
    push: _RawPushBody


_decode_raw_push_line = msgspec.json.Decoder(_RawPushLine).decode


def _lines(text: str) -> list[str] | None:
    """The messages of a frame for the publication fast paths; None beyond the message limit
    (the full path reports it). One trailing newline is tolerated, as by :func:`_split`."""
    if text.endswith("\n"):
        text = text[:-1]
    lines = text.split("\n")
    return lines if len(lines) <= DEFAULT_MAX_MESSAGES else None


def decode_publications(text: str) -> list[tuple[str, Publication]] | None:
    """:func:`decode_publication_push` for each message of a frame that holds nothing but
    publication pushes (the server batches them), in frame order; ``None`` as soon as one
    message is anything else, and then nothing was decoded: :func:`decode_replies` decides."""
    lines = _lines(text) if "\n" in text else [text]
    if lines is None:
        return None
    out: list[tuple[str, Publication]] = []
    for line in lines:
        try:
            push = _decode_push_line(line).push
        except msgspec.MsgspecError:
            return None
        pub = push.pub
        if pub.offset > MAX_OFFSET:
            return None
        out.append((push.channel, Publication(pub.data, None, pub.offset)))
    return out


def decode_publications_raw(text: str) -> list[tuple[str, int, msgspec.Raw]] | None:
    """:func:`decode_publications` minus the decoding of each publication's data:
    ``(channel, offset, raw)``, ``raw`` being the data's JSON text as it came (checked to be
    valid JSON; empty when the publication has no data), for a consumer that decodes it
    straight into its own types. :func:`decode_raw_data` gives the value
    :func:`decode_publications` would have put in ``Publication.data``."""
    lines = _lines(text) if "\n" in text else [text]
    if lines is None:
        return None
    out: list[tuple[str, int, msgspec.Raw]] = []
    for line in lines:
        try:
            push = _decode_raw_push_line(line).push
        except msgspec.MsgspecError:
            return None
        pub = push.pub
        if pub.offset > MAX_OFFSET:
            return None
        out.append((push.channel, pub.offset, pub.data))
    return out


def decode_raw_data(raw: msgspec.Raw) -> Any:
    """The JSON value of a publication's raw data (``None`` when it had none), as
    :func:`decode_publication_push` decodes it."""
    return _decode_json(raw) if raw else None


# --- server side -----------------------------------------------------------------------------


def _decode_client_message(obj: dict[str, Any]) -> ClientMessage:
    msg_id = _get_id(obj)
    if not msg_id and not any(key in _REQUEST_BY_KEY for key in obj):
        return Pong()  # ``{}``; unknown keys are ignored, as everywhere
    key, cls = _one_key(obj, _REQUEST_BY_KEY, "command")
    if (key == "send") != (msg_id == 0):
        raise ProtocolError("send must have no id" if msg_id else f"{key} command without an id")
    return Command(msg_id, _body(obj[key], cls, f"{key} request"))


def decode_commands(
    text: object, *, max_size: int = DEFAULT_MAX_FRAME, max_messages: int = DEFAULT_MAX_MESSAGES
) -> list[ClientMessage]:
    """Decode a client text frame into commands and pongs, in frame order.

    Raises ``FrameError`` / ``ProtocolError`` (answer with disconnect 3501 bad request);
    ``exc.decoded`` holds the commands before the bad one.
    """
    return _decode_frame(text, max_size, max_messages, _decode_client_message)


def _server_obj(message: ServerMessage) -> dict[str, Any]:
    if isinstance(message, Reply):
        result = message.result
        key = "error" if isinstance(result, Error) else RESULT_METHODS[type(result)]
        return {"id": message.id, key: converter.unstructure(result)}
    if isinstance(message, Push):
        body = message.body
        if type(body) is Publication and body.info is None and not body.tags:
            return _publication_push_obj(message.channel, body.data, body.offset)
        push: dict[str, Any] = {"channel": message.channel} if message.channel else {}
        push[PUSH_TYPES[type(body)]] = converter.unstructure(body)
        return {"push": push}
    return {}


def _publication_push_obj(channel: str, data: Any, offset: int) -> dict[str, Any]:
    # the server's per-event frame: what the converter gives (defaults omitted), built
    # directly; test_wire_codec checks the two paths agree
    pub: dict[str, Any] = {} if data is None else {"data": data}
    if offset:
        pub["offset"] = offset
    return {"push": {"channel": channel, "pub": pub} if channel else {"pub": pub}}


def encode_replies(messages: Iterable[ServerMessage]) -> str:
    """Encode replies, pushes and pings into one text frame. Success always carries its key."""
    return _join(_server_obj(m) for m in messages)


def encode_reply(message: ServerMessage) -> str:
    """Encode one server message (e.g. a publication push to fan out to many sockets)."""
    return _join((_server_obj(message),))


def encode_publication_push(channel: str, data: Any, offset: int) -> str:
    """``encode_reply(Push(channel, Publication(data=data, offset=offset)))`` without building
    the two message objects: the server encodes one such frame per publication."""
    return _dumps(_publication_push_obj(channel, data, offset))
