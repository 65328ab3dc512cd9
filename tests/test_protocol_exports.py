"""The wire, protocol and net facades: every exported name exists and is documented."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

import reactive_aiops.net
import reactive_aiops.protocol
import reactive_aiops.wire

FACADES = [reactive_aiops.wire, reactive_aiops.protocol, reactive_aiops.net]


@pytest.mark.parametrize("module", FACADES, ids=lambda m: m.__name__)
def test_all_names_exist_and_classes_and_functions_have_docstrings(module: ModuleType) -> None:
    undocumented = []
    for name in module.__all__:
        obj = getattr(module, name)
        # a class's own docstring: inspect.getdoc would fall back to a base class's
        doc = vars(obj).get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", "")
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not doc:
            undocumented.append(name)
    assert undocumented == []


def test_the_names_other_helpers_rely_on() -> None:
    assert {
        "encode_commands",
        "decode_replies",
        "decode_commands",
        "encode_replies",
        "ProtocolError",
        "FrameError",
        "DisconnectCode",
        "ErrorCode",
        "EventEnvelope",
        "decode_event",
        "encode_event",
    } <= set(reactive_aiops.wire.__all__)
    assert {"ClientProtocol", "ClientConfig", "backoff", "ReplyError", "CommandTimeout"} <= set(
        reactive_aiops.protocol.__all__
    )
    assert {"WebSocketManager", "SubscriptionError"} <= set(reactive_aiops.net.__all__)
