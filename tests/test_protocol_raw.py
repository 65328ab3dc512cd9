"""Raw publications: the protocol with ``raw_publications`` emits exactly the events it emits
without (each ``RawPublicationReceived`` standing for its ``PublicationReceived``), with the same
bookkeeping (positions, gaps, duplicates, held publications, closes); and the wire's frame-level
publication decoders agree with the full decoder wherever they answer."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_aiops.protocol import (
    ChannelStatus,
    ClientProtocol,
    PublicationReceived,
    RawPublicationReceived,
)
from reactive_aiops.wire import (
    DEFAULT_MAX_FRAME,
    DEFAULT_MAX_MESSAGES,
    Publication,
    Push,
    StreamPosition,
    decode_publications,
    decode_publications_raw,
    decode_raw_data,
)
from reactive_aiops.wire.codec import _decode_frame, _decode_server_message

# -- the wire ---------------------------------------------------------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**65), 2**65)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
_offsets = st.one_of(
    st.integers(0, 12), st.integers(-3, 2**64 + 2), st.floats(0, 3), st.text(max_size=2)
)


@st.composite
def _message(draw: st.DrawFn) -> str:
    """One line of a server frame: mostly publication pushes, some of them off the schema."""
    kind = draw(st.sampled_from(["pub", "pub", "pub", "pub", "odd", "reply", "ping", "junk"]))
    if kind == "ping":
        return "{}"
    if kind == "reply":
        return '{"id":7,"rpc":{"data":1}}'
    if kind == "junk":
        return draw(st.sampled_from(["", "{", "[1]", "NaN", '{"push":{"pub":{}}} x']))
    pub: dict[str, Any] = {}
    if draw(st.booleans()):
        pub["data"] = draw(_json)
    if draw(st.booleans()):
        pub["offset"] = draw(_offsets)
    push: dict[str, Any] = {"channel": draw(st.sampled_from(["a", "b", "c", "x"])), "pub": pub}
    if kind == "odd":
        where = draw(st.sampled_from(["pub", "push", "top"]))
        key = draw(st.sampled_from(["tags", "info", "extra", "join"]))
        target = {"pub": pub, "push": push}.get(where)
        if target is None:
            return json.dumps({"push": push, key: {}})
        target[key] = draw(_json)
    return json.dumps({"push": push}, separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])))


_frames = st.lists(_message(), min_size=1, max_size=4).map("\n".join) | st.lists(
    _message(), min_size=1, max_size=3
).map(lambda lines: "\n".join(lines) + "\n")


def _full(text: str) -> list[Any] | None:
    try:
        return _decode_frame(text, DEFAULT_MAX_FRAME, DEFAULT_MAX_MESSAGES, _decode_server_message)
    except Exception:
        return None


@settings(max_examples=400, deadline=None)
@given(text=_frames)
def test_the_frame_fast_paths_agree_with_the_full_decoder(text: str) -> None:
    fast = decode_publications(text)
    raw = decode_publications_raw(text)
    assert (fast is None) == (raw is None)
    if fast is None or raw is None:
        return
    assert [Push(c, p) for c, p in fast] == _full(text)
    assert [(c, p.offset, p.data) for c, p in fast] == [
        (c, o, decode_raw_data(d)) for c, o, d in raw
    ]


def test_a_frame_of_publications_is_decoded_whole_or_not_at_all() -> None:
    good = '{"push":{"channel":"a","pub":{"data":{"n":1},"offset":1}}}'
    assert decode_publications(f"{good}\n{good}\n") is not None
    assert decode_publications_raw(f"{good}\n{{}}") is None  # a ping: the full path
    assert decode_publications_raw(f"{good}\n\n{good}") is None  # an empty line: its error
    raws = decode_publications_raw('{"push":{"channel":"a","pub":{"offset":2}}}')
    assert raws is not None
    ((channel, offset, data),) = raws
    assert (channel, offset, decode_raw_data(data)) == ("a", 2, None)


# -- the protocol -----------------------------------------------------------------------------


def _connected(raw: bool) -> ClientProtocol:
    """Connected; ``a`` positioned at offset 3, ``b`` unpositioned, ``c`` still subscribing."""
    p = ClientProtocol(token="t", rand=lambda: 0.5, raw_publications=raw)
    for name in ("a", "b", "c"):
        p.subscribe(name, 0.0)
    p.start(0.0)
    p.transport_opening(0.0)
    p.transport_opened(0.0)
    p.data_to_send()
    p.receive_text('{"id":1,"connect":{"client":"x","version":"0"}}', 0.0)
    p.data_to_send()  # subscribes a (2), b (3), c (4)
    p.receive_text(
        '{"id":2,"subscribe":{"recoverable":true,"epoch":"e","offset":3,"positioned":true}}\n'
        '{"id":3,"subscribe":{}}',
        0.0,
    )
    p.events_received()
    return p


def _classic(events: list[Any]) -> list[Any]:
    return [e.received() if type(e) is RawPublicationReceived else e for e in events]


@settings(max_examples=300, deadline=None)
@given(frames=st.lists(_frames, min_size=1, max_size=6), answer_c=st.booleans())
def test_raw_publications_change_nothing_but_the_events_form(
    frames: list[str], answer_c: bool
) -> None:
    raw, classic = _connected(True), _connected(False)
    for i, text in enumerate(frames):
        if answer_c and i == len(frames) // 2:  # c's subscribe result releases what it held
            text = '{"id":4,"subscribe":{"recoverable":true,"epoch":"f","offset":2}}'
        raw.receive_text(text, float(i))
        classic.receive_text(text, float(i))
        got, want = raw.events_received(), classic.events_received()
        assert _classic(got) == want
        # only a plain in-order publication of a subscribed channel comes raw
        subscribed = {n for n, s in raw.channels().items() if s is ChannelStatus.SUBSCRIBED}
        assert all(type(e) is not RawPublicationReceived or e.channel in subscribed for e in got)
        assert raw.data_to_send() == classic.data_to_send()
        assert raw.phase is classic.phase
        for name in "abc":
            assert raw.position(name) == classic.position(name)
            assert raw.channels() == classic.channels()


def test_in_order_publications_come_raw_and_the_rest_as_before() -> None:
    p = _connected(True)
    pub = '{{"push":{{"channel":"a","pub":{{"data":{{"n":{0}}},"offset":{0}}}}}}}'
    p.receive_text("\n".join(pub.format(n) for n in (4, 5, 5, 7)), 1.0)
    events = p.events_received()
    assert [type(e).__name__ for e in events] == [
        "RawPublicationReceived",
        "RawPublicationReceived",
        "DuplicatesDropped",  # 5 again
        "ResyncRequired",  # 7 after 5: a gap
        "PublicationReceived",
    ]
    first = events[0]
    assert isinstance(first, RawPublicationReceived)
    assert bytes(first.data) == b'{"n":4}'
    assert first.received() == PublicationReceived("a", Publication(data={"n": 4}, offset=4))
    assert p.position("a") == StreamPosition(offset=7, epoch="e")


def test_a_raw_event_is_a_small_frozen_struct() -> None:
    event = RawPublicationReceived("a", 1, msgspec.Raw(b"[1]"))
    assert event.to_publication() == Publication(data=[1], offset=1)
    assert RawPublicationReceived("a", 0, msgspec.Raw()).to_publication() == Publication()


def test_an_offset_beyond_uint64_is_a_protocol_error_not_an_exception() -> None:
    # The one-push fast path used to hand 2**64 to Publication, whose check raised ValueError
    # out of receive_text; the full decoder reports it and the connection closes.
    for raw in (False, True):
        p = _connected(raw)
        p.receive_text('{"push":{"channel":"a","pub":{"offset":18446744073709551616}}}', 1.0)
        (close,) = p.events_received()
        assert type(close).__name__ == "CloseTransport"
        assert "integer out of range" in close.reason
    assert (
        decode_publications('{"push":{"channel":"a","pub":{"offset":18446744073709551616}}}')
        is None
    )
