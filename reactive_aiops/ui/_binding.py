"""The handle every widget adapter returns."""

from __future__ import annotations

from reactivex.disposable import CompositeDisposable

__all__ = ["Binding"]


class Binding(CompositeDisposable):
    """A stream bound to a widget: disposed with the widget, or earlier by :meth:`dispose`.

    ``dispose()`` is idempotent and thread-safe; after it no further value reaches the widget's
    callback (a value already running on the UI thread finishes). ``is_disposed`` tells whether
    the binding is over -- because the widget went away, the caller disposed it, or the stream
    completed or failed.
    """
