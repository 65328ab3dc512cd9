"""Function composition and the middleware contract."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

_S_co = TypeVar("_S_co", covariant=True)

#: ``dispatch(action) -> result``; the result is whatever the innermost handler returns.
Dispatch = Callable[[Any], Any]


class StoreAPI(Protocol[_S_co]):
    """What a middleware sees of the store: dispatch through the whole chain, and read state."""

    def dispatch(self, action: object) -> Any:
        """Dispatch ``action`` through every middleware, from the outermost."""
        ...

    def get_state(self) -> _S_co:
        """Return the current state."""
        ...

    @property
    def state(self) -> _S_co:
        """The current state."""
        ...


#: The Redux contract: ``middleware(api) -> (next) -> (action) -> result``.
Middleware = Callable[[StoreAPI[Any]], Callable[[Dispatch], Dispatch]]


def compose(*functions: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Compose single-argument functions right to left: ``compose(f, g)(x) == f(g(x))``.

    With no functions, returns the identity.
    """
    if not functions:
        return lambda value: value
    if len(functions) == 1:
        return functions[0]
    ordered = functions[::-1]

    def composed(value: Any) -> Any:
        for fn in ordered:
            value = fn(value)
        return value

    return composed
