"""Plain-text rendering for the ``lash-store`` CLI: tables, graph trees, payload previews.

Pure functions returning lines, so the CLI, the demo and the tests share them
and nothing here touches a store. Stored text is shown through :func:`visible`:
every line a command prints goes through :func:`write_lines`, which applies it,
so no stored string reaches the terminal with its control characters raw.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from lash_store_api import (
    ModelUsage,
    QueuedWorkBatch,
    SessionNodeRecord,
    TokenLedgerEntry,
    TokenUsage,
)

__all__ = [
    "ASCII",
    "UNICODE",
    "Glyphs",
    "claim_counts",
    "glyphs_for",
    "ledger_table",
    "preview",
    "queue_counts",
    "queue_table",
    "table",
    "tree_lines",
    "usage_table",
    "visible",
    "when",
    "write_lines",
]


@dataclass(frozen=True, slots=True)
class Glyphs:
    tee: str
    elbow: str
    pipe: str
    blank: str
    head: str
    ellipsis: str


UNICODE = Glyphs("├─ ", "└─ ", "│  ", "   ", "◀ head", "…")
ASCII = Glyphs("|- ", "`- ", "|  ", "   ", "<- head", "...")


def glyphs_for(stream: TextIO) -> Glyphs:
    """Box-drawing glyphs if ``stream`` can encode them, else ASCII (e.g. a latin-1 pipe)."""
    try:
        "├└│◀…".encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return ASCII
    return UNICODE


# --- escaping --------------------------------------------------------------------

#: C0 (NUL, BEL, ESC...), DEL and C1 controls, and the Unicode marks that break lines or
#: reorder the text around them: stored text could otherwise recolour, retitle or
#: clear the terminal, or hide what follows it.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with each control character shown as its escape: ESC as ``\\x1b``, BEL as
    ``\\x07``, a right-to-left override as ``\\u202e``. Idempotent: the result has none."""
    return _CONTROLS.sub(_escape, text)


def write_lines(lines: Iterable[str], out: TextIO) -> None:
    """Print ``lines`` to ``out``, each through :func:`visible`: the one way commands print.

    Tables and previews escape their cells first too, so that widths count what is shown.
    """
    for line in lines:
        print(visible(line), file=out)


# --- tables ----------------------------------------------------------------------


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    total: Sequence[object] | None = None,
    indent: str = "",
) -> list[str]:
    """Columns two spaces apart; numbers right-aligned with thousands separators.

    ``total`` is printed under a rule. A column is numeric when every body cell
    in it is an int.
    """
    body = [list(row) for row in rows]
    judged = body or ([list(total)] if total is not None else [])
    numeric = [
        bool(judged) and all(isinstance(r[i], int) and not isinstance(r[i], bool) for r in judged)
        for i in range(len(headers))
    ]
    cells = [[_cell(v) for v in row] for row in body]
    foot = None if total is None else [_cell(v) for v in total]
    every = [list(headers), *cells, *([foot] if foot is not None else [])]
    widths = [max(len(r[i]) for r in every) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row, widths, numeric, strict=True)
        ]
        return (indent + "  ".join(parts)).rstrip()

    out = [line(headers), *(line(r) for r in cells)]
    if foot is not None:
        out.append(indent + "  ".join("-" * w for w in widths))
        out.append(line(foot))
    return out


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return visible(str(value))


def _usage_cells(u: TokenUsage) -> list[object]:
    return [u.input_tokens, u.output_tokens, u.cached_input_tokens, u.reasoning_tokens, u.total()]


USAGE_HEADERS = ("input", "output", "cached", "reasoning", "total")


def ledger_table(ledger: Sequence[TokenLedgerEntry], *, indent: str = "") -> list[str]:
    """A session's token ledger; a total row when there is more than one entry."""
    if not ledger:
        return [f"{indent}(no token usage recorded)"]
    rows = [[e.source, e.model, *_usage_cells(e.usage)] for e in ledger]
    total = None
    if len(ledger) > 1:
        summed = sum((e.usage for e in ledger), TokenUsage())
        total = ["total", "", *_usage_cells(summed)]
    return table(("source", "model", *USAGE_HEADERS), rows, total=total, indent=indent)


def usage_table(usage: Sequence[ModelUsage], *, indent: str = "") -> list[str]:
    """Token totals by model across sessions, with a total row."""
    if not usage:
        return [f"{indent}(no token usage recorded)"]
    rows = [[m.model, m.session_count, *_usage_cells(m.usage)] for m in usage]
    summed = sum((m.usage for m in usage), TokenUsage())
    # The sessions column is not summed: one session may use several models.
    total = ["total", "", *_usage_cells(summed)]
    return table(("model", "sessions", *USAGE_HEADERS), rows, total=total, indent=indent)


# --- times -----------------------------------------------------------------------


def when(epoch_ms: int) -> str:
    """Epoch milliseconds as UTC to the second: ``2026-12-01 13:05:09``; outside the
    years 1 to 9999 (e.g. a lease of a very long TTL), the raw ``… ms since epoch``."""
    try:
        return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return f"{epoch_ms} ms since epoch"


# --- payload previews ------------------------------------------------------------

_LABEL_KEYS = ("type", "role", "kind")
_TEXT_KEYS = ("text", "content", "message", "summary", "output", "result")


def batch_state(batch: QueuedWorkBatch, pending: set[str], now_ms: int) -> str:
    """``claimed`` (a live lease holds it), ``waiting`` (not yet available) or ``ready``."""
    if batch.batch_id not in pending:
        return "claimed"
    return "waiting" if batch.available_at_ms > now_ms else "ready"


def _merge_key(batch: QueuedWorkBatch) -> str:
    key = batch.merge_key
    return f"group:{key[1]}" if isinstance(key, tuple) else key


def queue_table(
    batches: Sequence[QueuedWorkBatch], pending: set[str], now_ms: int, *, indent: str = ""
) -> list[str]:
    """One row per batch, in queue order, with its claim state."""
    rows = [
        [
            b.enqueue_seq,
            b.batch_id,
            batch_state(b, pending, now_ms),
            b.slot_policy.value,
            b.delivery_policy.value,
            _merge_key(b),
            len(b.items),
            b.source_key or "-",
        ]
        for b in batches
    ]
    headers = ("seq", "batch", "state", "slot", "delivery", "merge", "items", "source key")
    return table(headers, rows, indent=indent)


def claim_counts(batches: Sequence[QueuedWorkBatch], pending: set[str]) -> dict[str, int]:
    """How many ``batches``, and of them pending and claimed (``show --json``'s counts)."""
    claimed = sum(1 for b in batches if b.batch_id not in pending)
    return {"batches": len(batches), "pending": len(batches) - claimed, "claimed": claimed}


def queue_counts(batches: Sequence[QueuedWorkBatch], pending: set[str]) -> str:
    """``"3 batches: 2 pending, 1 claimed"``."""
    counts = claim_counts(batches, pending)
    noun = "batch" if counts["batches"] == 1 else "batches"
    return f"{counts['batches']} {noun}: {counts['pending']} pending, {counts['claimed']} claimed"


def preview(payload: object, width: int = 60, glyphs: Glyphs = UNICODE) -> str:
    """One line describing a node payload, cut to ``width`` characters."""
    # Collapse newlines and runs of blanks, then escape, so the cut counts what is shown.
    text = visible(" ".join(_describe(payload).split()))
    if len(text) <= width:
        return text
    keep = max(width - len(glyphs.ellipsis), 1)
    return text[:keep].rstrip() + glyphs.ellipsis


def _describe(payload: object) -> str:
    if isinstance(payload, Mapping):
        kind = payload.get("kind")
        if kind == "event" and "event" in payload:
            return _describe_event(payload["event"])
        if kind == "plugin":
            return (
                f"[{payload.get('plugin_type', 'plugin')}] {_describe_event(payload.get('body'))}"
            )
    return _describe_event(payload)


def _describe_event(event: object) -> str:
    if isinstance(event, str):
        return event
    if not isinstance(event, Mapping):
        return _compact(event)
    label_key = next((k for k in _LABEL_KEYS if isinstance(event.get(k), str)), None)
    label = str(event[label_key]) if label_key else ""
    text = next((t for k in _TEXT_KEYS if (t := _text_of(event.get(k))) is not None), None)
    if text is None:
        # No prose (e.g. a tool call): show the remaining fields compactly.
        rest = {k: v for k, v in event.items() if k != label_key}
        name = rest.pop("name", None)
        text = " ".join(
            part
            for part in (str(name) if name is not None else "", _compact(rest) if rest else "")
            if part
        )
    return f"{label}: {text}" if label else text


def _text_of(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: [{"type": "text", "text": ...}, ...]
        parts = [
            p["text"] for p in value if isinstance(p, Mapping) and isinstance(p.get("text"), str)
        ]
        return " ".join(parts) if parts else None
    return None


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=repr)


# --- graph trees -----------------------------------------------------------------


def tree_lines(
    nodes: Sequence[SessionNodeRecord],
    leaf_node_id: str | None,
    *,
    glyphs: Glyphs = UNICODE,
    width: int = 100,
    indent: str = "",
) -> list[str]:
    """The nodes as a tree: children under their parent, siblings in insertion order.

    A node's only child is drawn in the same column (a conversation is mostly
    one long chain, which would otherwise drift off the screen); indentation
    appears only where the graph branches. Nodes whose parent is not among
    ``nodes`` start their own tree; nodes only reachable through a cycle are
    drawn last, marked.
    """
    if not nodes:
        return [f"{indent}(no nodes)"]
    ids = {n.node_id for n in nodes}
    children: dict[str, list[SessionNodeRecord]] = {}
    roots: list[SessionNodeRecord] = []
    for node in nodes:
        parent = node.parent_node_id
        if parent is None or parent not in ids or parent == node.node_id:
            roots.append(node)
        else:
            children.setdefault(parent, []).append(node)
    id_width = max(len(visible(n.node_id)) for n in nodes)
    out: list[str] = []
    seen: set[str] = set()

    def draw(start: Sequence[SessionNodeRecord], base: str, note: str | None = None) -> None:
        # Explicit stack, not recursion: deep chains must not hit the recursion limit.
        stack: list[tuple[SessionNodeRecord, str, str, str | None]] = []
        forked = len(start) > 1
        for i, node in reversed(list(enumerate(start))):
            last = i == len(start) - 1
            first = base + ((glyphs.elbow if last else glyphs.tee) if forked else "")
            cont = base + ((glyphs.blank if last else glyphs.pipe) if forked else "")
            stack.append((node, first, cont, note))
        while stack:
            node, first, cont, mark = stack.pop()
            if node.node_id in seen:
                continue
            seen.add(node.node_id)
            out.append(_node_line(node, first, id_width, leaf_node_id, glyphs, width, mark))
            kids = [k for k in children.get(node.node_id, ()) if k.node_id not in seen]
            if len(kids) == 1:
                stack.append((kids[0], cont, cont, None))
            else:
                for i, kid in reversed(list(enumerate(kids))):
                    last = i == len(kids) - 1
                    first = cont + (glyphs.elbow if last else glyphs.tee)
                    stack.append((kid, first, cont + (glyphs.blank if last else glyphs.pipe), None))

    draw(roots, indent)
    stranded = [n for n in nodes if n.node_id not in seen]
    while stranded:  # on a parent cycle: no root reaches these
        draw(stranded[:1], indent, "(in a parent cycle)")
        stranded = [n for n in stranded if n.node_id not in seen]
    return out


def _node_line(
    node: SessionNodeRecord,
    prefix: str,
    id_width: int,
    leaf: str | None,
    glyphs: Glyphs,
    width: int,
    note: str | None,
) -> str:
    marks = []
    if node.node_id == leaf:
        marks.append(glyphs.head)
    if note:
        marks.append(note)
    suffix = ("  " + " ".join(marks)) if marks else ""
    head = f"{prefix}{visible(node.node_id).ljust(id_width)}  "
    room = max(width - len(head) - len(suffix), 16)
    return (head + preview(node.payload, room, glyphs) + suffix).rstrip()
