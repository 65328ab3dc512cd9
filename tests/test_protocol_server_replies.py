"""The server connection's pure answers: output framing, history selection, big recoveries."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from reactive_aiops.protocol.server.replies import history_result, join_frames, subscribe_reply
from reactive_aiops.wire.messages import (
    Error,
    HistoryRequest,
    HistoryResult,
    StreamPosition,
    SubscribeRequest,
)

MESSAGES = st.lists(st.text(alphabet="{}:ab\"0", min_size=1, max_size=40), max_size=30)


@given(MESSAGES, st.integers(min_value=1, max_value=120))
def test_frames_keep_every_message_in_order_within_the_size(
    messages: list[str], max_frame: int
) -> None:
    frames = join_frames(list(messages), max_frame)
    assert [m for frame in frames for m in frame.split("\n")] == messages
    for frame in frames:
        # only a frame holding a single message may exceed the size
        assert len(frame) <= max_frame or "\n" not in frame


class _Pub:
    def __init__(self, offset: int) -> None:
        self.channel, self.offset, self.data, self.frame = "c", offset, {"n": offset}, None


def test_history_after_a_position_reversed_and_limited() -> None:
    pubs = [_Pub(o) for o in range(1, 6)]
    request = HistoryRequest(channel="c", limit=2, since=StreamPosition(offset=2, epoch="e"),
                             reverse=True)
    result = history_result(request, ("e", 5, pubs))
    assert isinstance(result, HistoryResult)
    assert [p.offset for p in result.publications] == [5, 4]
    assert (result.epoch, result.offset) == ("e", 5)


def test_history_since_another_epoch_is_unrecoverable() -> None:
    request = HistoryRequest(channel="c", since=StreamPosition(offset=2, epoch="old"))
    result = history_result(request, ("new", 5, [_Pub(3)]))
    assert isinstance(result, Error)
    assert result.code == 112


def test_a_recovery_too_big_for_one_reply_is_answered_as_not_recovered() -> None:
    request = SubscribeRequest(channel="c", recover=True, offset=0, epoch="e")
    pubs = [_Pub(o) for o in range(1, 101)]
    small = json.loads(subscribe_reply(7, request, "e", 0, True, pubs, max_recovery_size=10**6))
    assert small["subscribe"]["recovered"] is True
    assert len(small["subscribe"]["publications"]) == 100
    big = json.loads(subscribe_reply(7, request, "e", 0, True, pubs, max_recovery_size=200))
    assert big["id"] == 7
    assert big["subscribe"].get("recovered", False) is False
    assert "publications" not in big["subscribe"]
    assert big["subscribe"]["offset"] == 100  # positioned after the backlog it did not send
