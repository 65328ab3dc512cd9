"""Building instances of plain frozen attrs classes without their ``__init__`` (private).

A frozen slotted attrs class sets each field in ``__init__`` through ``object.__setattr__``
(one C call per field, about 55 ns each here); ``EventMeta`` (eight fields) costs about 0.6 µs
to build and a ``(payload, meta)`` action about 0.4 µs, once per live event each.
:func:`fast_constructor` builds the same objects in about a quarter of that: it fills the slots
of an instance of a private subclass that is not frozen (plain ``STORE_ATTR``, in C), then makes
the instance's class the attrs class itself (``__class__`` assignment; the subclass adds no slot,
so the layout is the same). The result *is* an instance of the class: same type, fields,
equality, hash, repr, ``attrs.evolve``, cattrs and pickling, and it is frozen.

Only for classes where ``__init__`` does nothing but store its arguments: frozen and slotted, no
validators, converters, ``on_setattr`` hooks, ``__attrs_pre_init__``/``__attrs_post_init__``,
no cached hash, every field an ``init`` argument. The constructor takes every field,
positionally, in the class's field order (no defaults are applied). Anything else, or a Python
where the trick does not produce the class's own instance, gets ``None``: use the class.

The one trace it leaves: the private subclass is listed by ``cls.__subclasses__()`` (nothing in
this project walks subclasses; cattrs' ``include_subclasses`` strategy would).
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["fast_constructor", "fast_copier", "fast_replacers"]


@attrs.frozen
class _Frozen:
    """A frozen attrs class, for the ``__setattr__`` attrs gives every frozen class."""


#: ``__setattr__`` of a class whose __init__ may be bypassed: attrs' frozen one, or object's (a
#: mutable attrs class without hooks). Anything else is the class's own, which __init__ runs.
_PLAIN_SETATTRS = (_Frozen.__setattr__, object.__setattr__)


def _own_slots(cls: type[Any]) -> set[str]:
    slots: set[str] = set()
    for klass in cls.__mro__[:-1]:  # object has none
        own = klass.__dict__.get("__slots__")
        if own is None:
            return {"__dict__"}  # a class without __slots__ in the chain: a dict instance
        slots.update((own,) if isinstance(own, str) else own)
    return slots


def _plain(cls: type[Any], *, post_init: bool = False) -> bool:
    """Whether ``cls``'s ``__init__`` only stores its arguments, one slot per field (and then
    calls ``__attrs_post_init__``, if ``post_init`` allows one)."""
    if not (isinstance(cls, type) and attrs.has(cls)):
        return False
    if cls.__mro__[1:] != (object,):
        return False  # attrs subclasses: fields and hooks of the base; not needed here
    hooks = ("__attrs_pre_init__",) if post_init else ("__attrs_pre_init__", "__attrs_post_init__")
    if any(hasattr(cls, hook) for hook in hooks):
        return False
    if not any(cls.__setattr__ is plain for plain in _PLAIN_SETATTRS):
        return False
    code = getattr(cls.__dict__.get("__init__"), "__code__", None)
    if code is None or not code.co_filename.startswith("<attrs generated"):
        return False  # a hand-written __init__ (init=False), or an attrs we do not know
    fields = attrs.fields(cls)
    for field in fields:
        if (
            not field.init
            or field.validator is not None
            or field.converter is not None
            or field.on_setattr not in (None, attrs.setters.NO_OP)
            or not field.name.isidentifier()
            or keyword.iskeyword(field.name)
        ):
            return False
    # Exactly one slot per field (plus a weakref slot): no cached hash, no instance dict.
    return _own_slots(cls) - {"__weakref__"} == {field.name for field in fields}


#: One builder subclass per class, shared by its constructor, replacers and copier.
_BUILDERS: dict[type[Any], type[Any]] = {}


def _builder(cls: type[Any]) -> type[Any]:
    """The private, not frozen subclass instances are filled in (see the module doc)."""
    builder = _BUILDERS.get(cls)
    if builder is None:
        # Both of the attrs class's __setattr__ and __delattr__ replaced by object's: they share
        # one type slot, and only then does CPython set the slots directly.
        builder = _BUILDERS[cls] = type(
            f"_Building{cls.__name__}",
            (cls,),
            {
                "__slots__": (),
                "__setattr__": object.__setattr__,
                "__delattr__": object.__delattr__,
            },
        )
    return builder


def _compile(
    cls: type[Any], builder: type[Any], params: str, values: list[str], *, post_init: bool = False
) -> Any:
    """``build(<params>)`` storing each field from its expression in ``values`` (in the
    class's field order), then handing the instance to ``cls`` (and calling its
    ``__attrs_post_init__`` when ``post_init``, as its ``__init__`` would)."""
    names = [field.name for field in attrs.fields(cls)]
    body = "".join(f"    obj.{name} = {value}\n" for name, value in zip(names, values, strict=True))
    source = (
        f"def build({params}):\n"
        "    obj = new(builder)\n"
        f"{body}"
        "    obj.__class__ = cls\n"
        f"{'    obj.__attrs_post_init__()' if post_init else ''}\n"
        "    return obj\n"
    )
    namespace: dict[str, Any] = {"new": object.__new__, "builder": builder, "cls": cls}
    exec(compile(source, f"<fast constructor of {cls.__qualname__}>", "exec"), namespace)
    return namespace["build"]


def fast_constructor(cls: type[Any]) -> Callable[..., Any] | None:
    """A function building an instance of the plain frozen attrs class ``cls`` from all its
    fields, positionally (see the module doc), or ``None`` when ``cls`` is not such a class."""
    if not _plain(cls):
        return None
    names = [field.name for field in attrs.fields(cls)]
    params = [f"a{i}" for i in range(len(names))]
    try:
        build: Callable[..., Any] = _compile(cls, _builder(cls), ", ".join(params), params)
        # The trick relies on CPython's __class__ assignment rules: check it once.
        values = [object() for _ in names]
        probe = build(*values)
        if type(probe) is not cls or [getattr(probe, n) for n in names] != values:
            return None
    except (TypeError, AttributeError):
        return None
    return build


def fast_replacers(cls: type[Any]) -> dict[str, Callable[[Any, Any], Any]] | None:
    """For each field of the plain frozen attrs class ``cls``, ``replace(instance, value)``:
    ``attrs.evolve(instance, <field>=value)`` for an instance of ``cls`` itself, built as
    :func:`fast_constructor` builds (each other field read from ``instance``). ``None`` when
    ``cls`` is not such a class."""
    if fast_constructor(cls) is None:
        return None
    names = [field.name for field in attrs.fields(cls)]
    builder = _builder(cls)
    replacers: dict[str, Callable[[Any, Any], Any]] = {}
    try:
        probe = cls(*[object() for _ in names])
        for name in names:
            values = ["value" if other == name else f"instance.{other}" for other in names]
            replace = replacers[name] = _compile(cls, builder, "instance, value", values)
            value = object()
            if replace(probe, value) != attrs.evolve(probe, **{name: value}):
                return None
    except (TypeError, AttributeError):
        return None
    return replacers


def fast_copier(cls: type[Any]) -> Callable[[Any], Any] | None:
    """``copy(source)``: an instance of the attrs class ``cls`` whose every field is read from
    the attribute of the same name of ``source`` (a msgspec struct mirroring ``cls``, say),
    built as :func:`fast_constructor` builds and then given to ``cls.__attrs_post_init__``
    when it has one: ``cls(**{f: getattr(source, f) for f in fields})``. ``None`` when
    ``cls.__init__`` does more than that (see the module doc; a post-init hook is allowed)."""
    if not _plain(cls, post_init=True):
        return None
    names = [field.name for field in attrs.fields(cls)]
    post_init = hasattr(cls, "__attrs_post_init__")
    try:
        copy: Callable[[Any], Any] = _compile(
            cls, _builder(cls), "source", [f"source.{name}" for name in names],
            post_init=post_init,
        )
        # The trick relies on CPython's __class__ assignment rules: check it once (without
        # the hook, which may reject made-up values).
        bare = _compile(cls, _builder(cls), "source", [f"source.{name}" for name in names])
        values = {name: object() for name in names}
        probe = bare(type("_Source", (), values))
        if type(probe) is not cls or any(getattr(probe, n) is not v for n, v in values.items()):
            return None
    except (TypeError, AttributeError):
        return None
    return copy
