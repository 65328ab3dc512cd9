"""What a server connection answers, as pure functions: error replies, the subscribe and history
results, and how outgoing messages are joined into frames."""

from __future__ import annotations

from collections.abc import Sequence

from reactive_aiops.protocol.server.hub import HistoryOutcome, PublicationLike
from reactive_aiops.protocol.server.limits import MAX_OUT_FRAME
from reactive_aiops.wire.codec import encode_replies
from reactive_aiops.wire.codes import ERROR_MESSAGES, ErrorCode
from reactive_aiops.wire.messages import (
    Error,
    HistoryRequest,
    HistoryResult,
    Publication,
    Reply,
    SubscribeRequest,
    SubscribeResult,
)

__all__ = ["error_reply", "history_result", "join_frames", "subscribe_reply"]


def error_reply(code: int, message: str | None = None) -> Error:
    """The error for ``code`` (its standard message unless given); 100 and 111 are temporary."""
    temporary = code in (ErrorCode.INTERNAL, ErrorCode.TOO_MANY_REQUESTS)
    return Error(code, message or ERROR_MESSAGES.get(code, "error"), temporary)


def join_frames(messages: list[str], max_frame: int = MAX_OUT_FRAME) -> list[str]:
    """``messages`` joined with ``\\n`` into frames of at most ``max_frame`` characters (a longer
    message goes alone), in order."""
    if len(messages) <= 1:
        return messages
    frames: list[str] = []
    batch: list[str] = []
    size = 0
    for text in messages:
        if batch and size + len(text) + 1 > max_frame:
            frames.append("\n".join(batch))
            batch, size = [], 0
        batch.append(text)
        size += len(text) + 1
    frames.append("\n".join(batch))
    return frames


def subscribe_reply(command_id: int, request: SubscribeRequest, epoch: str, offset: int,
                    recovered: bool, pubs: Sequence[PublicationLike],
                    max_recovery_size: int) -> str:
    """The encoded reply to a subscribe positioned at ``(epoch, offset)`` with the recovered
    ``pubs``; a recovery larger than ``max_recovery_size`` characters is answered as not
    recovered, positioned after the last of ``pubs``."""
    result = SubscribeResult(
        recoverable=True, positioned=True, epoch=epoch, offset=offset, recovered=recovered,
        was_recovering=request.recover,
        publications=tuple(Publication(data=p.data, offset=p.offset) for p in pubs))
    text = encode_replies((Reply(command_id, result),))
    if pubs and len(text) > max_recovery_size:
        # A backlog this big may not fit a client's frame limit (1 MiB is websockets'
        # default): the client would reconnect forever. Say "not recovered": it resyncs
        # from a snapshot instead (one entity each, not every change), and goes on.
        text = encode_replies((Reply(command_id, SubscribeResult(
            recoverable=True, positioned=True, epoch=epoch, offset=pubs[-1].offset,
            recovered=False, was_recovering=request.recover)),))
    return text


def history_result(request: HistoryRequest, outcome: HistoryOutcome) -> HistoryResult | Error:
    """The ``history`` answer: the retained publications after ``since`` (error 112 if ``since``
    names another epoch), reversed if asked, at most ``limit`` of them."""
    epoch, top, retained = outcome
    pubs = list(retained)
    if request.since is not None:
        if request.since.epoch and request.since.epoch != epoch:
            return error_reply(ErrorCode.UNRECOVERABLE_POSITION)
        pubs = [p for p in pubs if p.offset > request.since.offset]
    if request.reverse:
        pubs.reverse()
    if request.limit >= 0:
        pubs = pubs[: request.limit]
    return HistoryResult(
        publications=tuple(Publication(data=p.data, offset=p.offset) for p in pubs),
        epoch=epoch,
        offset=top,
    )
