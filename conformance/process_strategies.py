"""Hypothesis strategies for process event declarations (public API).

The companions of :mod:`lash_store_conformance.strategies` for the process
facet (spec/process_semantics.md): JSON pointers, selectors, dedupe keys,
payload schemas of the subset and whole event-type declarations. Every
declaration drawn is one a registry must accept; schemas include malformed
keyword values on purpose, because the subset ignores them::

    from hypothesis import given
    from lash_store_conformance import process_strategies as ps

    @given(ps.process_event_types())
    def test_register(event_type): ...

They compose like the session strategies (``keys=``, ``consts=``,
``names=``...) and shrink towards ``"payload"`` selectors and empty schemas.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from lash_store_api import JSON, ProcessEventType

from .strategies import ids, json_texts, json_values

__all__ = [
    "dedupe_keys",
    "json_pointers",
    "payload_schemas",
    "process_event_types",
    "selectors",
    "terminal_specs",
    "wake_specs",
]

_TYPE_NAMES = ["null", "boolean", "string", "number", "integer", "array", "object", "other"]


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def json_pointers(
    *, keys: SearchStrategy[str] | None = None, max_tokens: int = 3
) -> SearchStrategy[str]:
    """RFC 6901 pointers: ``""`` or ``/``-joined escaped keys and array indexes."""
    token = st.one_of(
        (keys if keys is not None else json_texts(max_size=6)).map(_escape),
        st.integers(0, 3).map(str),
    )
    return st.lists(token, max_size=max_tokens).map(lambda ts: "".join("/" + t for t in ts))


def selectors(
    *,
    pointers: SearchStrategy[str] | None = None,
    consts: SearchStrategy[JSON] | None = None,
    max_depth: int = 2,
) -> SearchStrategy[JSON]:
    """Well-formed selectors; templates nest other selectors up to ``max_depth``."""
    pointer = pointers if pointers is not None else json_pointers()
    const = consts if consts is not None else json_values(max_leaves=4)
    leaf: SearchStrategy[JSON] = st.one_of(
        st.just("payload"),
        st.builds(lambda p: {"pointer": p}, pointer),
        st.builds(lambda v: {"const": v}, const),
        st.builds(lambda p: {"present": p}, pointer),
    )
    if max_depth <= 0:
        return leaf
    inner = selectors(pointers=pointers, consts=consts, max_depth=max_depth - 1)
    return st.one_of(leaf, _templates(inner))


@st.composite
def _templates(draw: st.DrawFn, fields: SearchStrategy[JSON]) -> JSON:
    names = draw(st.lists(st.text("abxy_{}", min_size=1, max_size=3), max_size=3, unique=True))
    parts = draw(st.lists(st.sampled_from([*names, "", " ", "{", "}"]), max_size=5))
    template = "".join(p if p in ("", " ", "{", "}") else "{" + p + "}" for p in parts)
    spec: dict[str, JSON] = {"template": template}
    empty_fields: bool = draw(st.booleans())
    if names or empty_fields:
        spec["fields"] = {name: draw(fields) for name in names}
    return {"template": spec}


def dedupe_keys(*, selector: SearchStrategy[JSON] | None = None) -> SearchStrategy[JSON]:
    """``"event_identity"``, ``{"selector": ...}`` or ``{"const": str}``."""
    return st.one_of(
        st.just("event_identity"),
        st.builds(lambda s: {"selector": s}, selector if selector is not None else selectors()),
        st.builds(lambda c: {"const": c}, json_texts(max_size=8)),
    )


def terminal_specs(*, selector: SearchStrategy[JSON] | None = None) -> SearchStrategy[JSON]:
    """Terminal specs; ``failed`` and ``cancelled`` always declare ``await_output``."""
    chosen = selector if selector is not None else selectors()
    return st.one_of(
        st.just({"state": "completed"}),
        st.builds(
            lambda state, s: {"state": state, "await_output": s},
            st.sampled_from(["completed", "failed", "cancelled"]),
            chosen,
        ),
    )


@st.composite
def _wake_specs(draw: st.DrawFn, selector: SearchStrategy[JSON]) -> JSON:
    spec: dict[str, JSON] = {"input": draw(selector)}
    if draw(st.booleans()):
        spec["when"] = draw(selector)
    if draw(st.booleans()):
        spec["dedupe_key"] = draw(dedupe_keys(selector=selector))
    return spec


def wake_specs(*, selector: SearchStrategy[JSON] | None = None) -> SearchStrategy[JSON]:
    """Wake specs: an ``input`` selector, optional ``when`` and ``dedupe_key``."""
    return _wake_specs(selector if selector is not None else selectors())


def _merge(a: JSON, b: JSON) -> JSON:
    """Two schemas' keywords in one object (the first wins unless both are objects)."""
    return {**a, **b} if isinstance(a, dict) and isinstance(b, dict) else a


def payload_schemas(*, max_leaves: int = 6) -> SearchStrategy[JSON]:
    """Schemas of the subset (§2), with malformed keyword values and non-object schemas mixed in."""
    scalar_keyword = st.one_of(
        st.fixed_dictionaries({"type": st.sampled_from(_TYPE_NAMES)}),
        st.fixed_dictionaries({"type": st.lists(st.sampled_from(_TYPE_NAMES), max_size=2)}),
        st.fixed_dictionaries({"enum": st.lists(json_values(max_leaves=2), max_size=3)}),
        st.fixed_dictionaries({"minimum": st.integers(-5, 5)}),
        st.fixed_dictionaries({"maximum": st.floats(-5, 5)}),
        st.fixed_dictionaries({"minLength": st.integers(-1, 3)}),
        st.fixed_dictionaries({"maxLength": st.integers(0, 3)}),
        st.fixed_dictionaries({"required": st.lists(json_texts(max_size=2), max_size=2)}),
        st.just({}),
        json_values(max_leaves=2),  # anything at all: ignored or constraining nothing
    )

    def nest(children: SearchStrategy[JSON]) -> SearchStrategy[JSON]:
        keys = json_texts(max_size=2)
        return st.one_of(
            st.builds(lambda bs: {"anyOf": bs}, st.lists(children, max_size=3)),
            st.builds(lambda bs: {"oneOf": bs}, st.lists(children, max_size=3)),
            st.builds(lambda s, n: {"items": s, "maxItems": n}, children, st.integers(0, 4)),
            st.builds(
                lambda props, extra: {"properties": props, "additionalProperties": extra},
                st.dictionaries(keys, children, max_size=3),
                st.one_of(st.booleans(), children, st.none()),
            ),
            st.builds(_merge, children, children),
        )

    return st.recursive(scalar_keyword, nest, max_leaves=max_leaves)


@st.composite
def _process_event_types(
    draw: st.DrawFn, names: SearchStrategy[str], schemas: SearchStrategy[JSON]
) -> ProcessEventType:
    semantics: dict[str, JSON] = {}
    if draw(st.booleans()):
        semantics["terminal"] = draw(terminal_specs())
    if draw(st.booleans()):
        semantics["wake"] = draw(wake_specs())
    return ProcessEventType(draw(names), {"schema": draw(schemas)}, semantics)


def process_event_types(
    *,
    names: SearchStrategy[str] | None = None,
    schemas: SearchStrategy[JSON] | None = None,
) -> SearchStrategy[ProcessEventType]:
    """Well-formed declarations: a non-blank name, a schema wrapper, optional terminal and wake."""
    name = names if names is not None else ids(max_size=12).filter(lambda s: bool(s.strip()))
    return _process_event_types(name, schemas if schemas is not None else payload_schemas())
