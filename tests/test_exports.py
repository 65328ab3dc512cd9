"""The public names that docs and examples rely on stay importable from the top level."""

from __future__ import annotations

import inspect

import reactive_aiops
import reactive_aiops.core

CONTRACT = {
    "create_store",
    "Store",
    "combine_reducers",
    "create_selector",
    "compose",
    "action",
    "action_type",
    "Batch",
    "Init",
    "EffectFailed",
    "ReducerError",
    "DispatchInReducerError",
}


def test_contract_names_are_exported() -> None:
    assert set(reactive_aiops.__all__) >= CONTRACT
    for name in reactive_aiops.__all__:
        assert getattr(reactive_aiops, name) is not None


def test_core_all_matches_attributes() -> None:
    for name in reactive_aiops.core.__all__:
        assert hasattr(reactive_aiops.core, name), name


def test_public_objects_have_docstrings() -> None:
    missing = [
        name
        for name in reactive_aiops.core.__all__
        if (
            inspect.isclass(getattr(reactive_aiops.core, name))
            or inspect.isfunction(getattr(reactive_aiops.core, name))
        )
        and not getattr(getattr(reactive_aiops.core, name), "__doc__", None)
    ]
    assert missing == []


def test_core_exports_the_batch_protocol() -> None:
    assert {"BatchReducer", "reduce_all", "with_reduce_many"} <= set(reactive_aiops.core.__all__)
