"""The writes of ``LashSaver``: a checkpoint (``aput``) and a task's writes
(``aput_writes``), each one commit guarded by the session's head revision.

A write starts from the head the saver last saw; when another writer moved it, the
commit is refused, the head read again and the write decided again (up to
:data:`MAX_ATTEMPTS` times). A checkpoint that continues one this saver saw as the
head must still find it the head, or :class:`ThreadForked` is raised instead of
forking the thread. Each commit bills, once per thread, the usage of the messages
it stores (:mod:`.usage`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    Checkpoint,
    CheckpointMetadata,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.constants import TASKS

import lash_store_api as lash

from .head import Head, Held, SessionState, Target, config_for, on_chain, target
from .layout import (
    CHECKPOINT_TYPE,
    SESSION_CONFIG,
    WRITE_TYPE,
    StoredNode,
    checkpoint_node_id,
    decode_writes,
    encode_typed,
    encode_write,
    kept_moving,
    token_record,
    write_node_id,
)
from .usage import BILLED, Bill, billable, task_source
from .values import entries, write_refs

if TYPE_CHECKING:
    from .saver import LashSaver

__all__ = ["MAX_ATTEMPTS", "ThreadForked", "put_checkpoint", "put_writes"]

#: How often a commit is retried after another writer moved the head.
MAX_ATTEMPTS = 20


class ThreadForked(lash.ConflictError):
    """Another writer moved the thread on from the checkpoint this write continues.

    Reload the thread (``aget_tuple``) and run the step again from its new head.
    """

    def __init__(self, thread_id: str, checkpoint_ns: str, parent: str | None, head: str | None):
        self.thread_id = thread_id
        self.checkpoint_ns = checkpoint_ns
        self.parent_checkpoint_id = parent
        self.head_checkpoint_id = head
        super().__init__(
            f"thread {thread_id!r} (namespace {checkpoint_ns!r}) moved on: this write continues "
            f"checkpoint {parent!r}, but another writer already made {head!r} the head"
        )


async def put_checkpoint(
    saver: LashSaver,
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
) -> RunnableConfig:
    """``aput``: store ``checkpoint`` in one commit; :class:`ThreadForked` when it
    continues a checkpoint this saver saw as the head and another writer moved on."""
    where = target(config)
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("id"), str):
        raise lash.InvalidRequest("checkpoint.id", "must be a string")
    cid, parent = checkpoint["id"], where.checkpoint_id
    node_id = checkpoint_node_id(cid)
    # The id is the body's; values are stored per channel.
    rest = {k: v for k, v in checkpoint.items() if k not in ("channel_values", "id")}
    body: dict[str, Any] = {
        "id": cid,
        "parent": parent,
        "checkpoint": encode_typed(saver.serde, "checkpoint", rest),
        "metadata": encode_typed(
            saver.serde, "metadata", get_checkpoint_metadata(config, metadata)
        ),
    }
    state = saver.state(where.session_id)
    async with state.lock:
        continues = parent in state.seen
        for _ in range(MAX_ATTEMPTS):
            head = await known_head(saver, where.session_id, state)
            if continues and head.latest != parent:
                raise ThreadForked(where.thread_id, where.checkpoint_ns, parent, head.latest)
            from_head = parent is not None and parent == head.latest
            prev = head.channels if from_head else await held_channels(saver, where, parent)
            refs = write_refs(head, parent) if from_head else {}
            body["values"], held = entries(saver.serde, node_id, checkpoint, prev, refs)
            bill = checkpoint_bill(saver.serde, head, checkpoint, body, metadata)
            if from_head:
                parent_node = head.leaf
            else:
                parent_node = None if parent is None else checkpoint_node_id(parent)
            latest = head.latest is None or cid >= head.latest
            record = StoredNode(node_id, parent_node, CHECKPOINT_TYPE, body).record()
            leaf = node_id if latest else head.leaf
            try:
                revision = await commit(saver, where.session_id, head, record, leaf, bill)
            except lash.RevisionConflict:
                state.head = None  # reload, then decide again
                continue
            head.revision = revision
            if latest:
                early = {k: w for k, w in head.writes.items() if w.checkpoint_id >= cid}
                state.head = Head(
                    revision, head.token, cid, node_id, early, held, body, head.billed
                )
                state.seen.pop(None, None)
                state.saw_head(cid)
            return config_for(where, cid)
    raise kept_moving(where.session_id)


def checkpoint_bill(
    serde: SerializerProtocol,
    head: Head,
    checkpoint: Checkpoint,
    body: dict[str, Any],
    metadata: CheckpointMetadata,
) -> Bill:
    """The usage of messages this checkpoint stores that no commit of the thread billed.


    The new items of a list that extends its parent's, and the whole of a value
    stored whole; a message a task's write billed is not billed again.
    """
    bill = Bill(serde, head.billed)
    named = metadata.get("source") if isinstance(metadata, Mapping) else None
    source = named if isinstance(named, str) and named else "checkpoint"
    values = checkpoint.get("channel_values") or {}
    for channel, entry in body["values"].items():
        value = values.get(channel)
        if entry[0] == "add" and isinstance(value, list):
            bill.add(source, value[len(value) - len(entry[3]) :])
        elif entry[0] == "v":
            bill.add(source, value)
    bill.record(body)
    return bill


async def held_channels(saver: LashSaver, where: Target, parent: str | None) -> dict[str, Held]:
    """The channels of a checkpoint that is not the head (their holders only)."""
    if parent is None:
        return {}
    node = await saver.resolver(where.session_id, {}).node(checkpoint_node_id(parent))
    if node is None:
        return {}
    return {
        ch: Held(e[1], e[2] if e[0] == "at" else node.node_id)
        for ch, e in node.body["values"].items()
    }


async def put_writes(
    saver: LashSaver,
    config: RunnableConfig,
    writes: Sequence[tuple[str, Any]],
    task_id: str,
    task_path: str = "",
) -> None:
    """``aput_writes``: store a task's writes for a checkpoint in one commit; a regular
    write already stored for the task stays as it was."""
    where = target(config)
    cid = where.checkpoint_id
    if cid is None:
        raise lash.InvalidRequest("config.configurable.checkpoint_id", "is required for writes")
    if not isinstance(task_id, str) or not task_id:
        raise lash.InvalidRequest("task_id", "must be a non-empty string")
    if not isinstance(task_path, str):
        raise lash.InvalidRequest("task_path", "must be a string")
    encoded: dict[int, dict[str, Any]] = {}
    raw: dict[int, Any] = {}
    for i, write in enumerate(writes):
        if not isinstance(write, tuple | list) or len(write) != 2 or not isinstance(write[0], str):
            raise lash.InvalidRequest(f"writes[{i}]", "must be a (channel, value) pair")
        idx = WRITES_IDX_MAP.get(write[0], i)
        encoded[idx] = encode_write(saver.serde, f"writes[{i}]", idx, write[0], write[1])
        raw[idx] = write[1]
    node_id = write_node_id(cid, task_id)
    state = saver.state(where.session_id)
    async with state.lock:
        for _ in range(MAX_ATTEMPTS):
            head = await known_head(saver, where.session_id, state)
            if await write_once(saver, where, head, node_id, task_id, task_path, cid, encoded, raw):
                return
            state.head = None
    raise kept_moving(where.session_id)


async def write_once(
    saver: LashSaver,
    where: Target,
    head: Head,
    node_id: str,
    task_id: str,
    task_path: str,
    cid: str,
    encoded: Mapping[int, dict[str, Any]],
    raw: Mapping[int, Any],
) -> bool:
    """One attempt at a writes commit; False when another writer moved the head."""
    chained = on_chain(cid, head.latest)
    existing = head.writes.get(node_id) if chained else None
    if existing is None and not chained:
        existing = await saver.resolver(where.session_id, {}).node(node_id)
    merged = {w["i"]: w for w in existing.body["writes"]} if existing else {}
    fresh = []
    for idx, write in encoded.items():
        if idx < 0 or idx not in merged:  # a regular write is stored once: the first stays
            merged[idx] = write
            fresh.append(raw[idx])
    if existing is not None and list(merged.values()) == existing.body["writes"]:
        return True
    body = {
        "checkpoint": cid,
        "task": task_id,
        "path": task_path,
        "writes": list(merged.values()),
    }
    bill = Bill(saver.serde, head.billed)
    if any(True for value in fresh for _ in billable(value)):
        source = task_source(task_path, pending_sends(saver.serde, head, cid))
        for value in fresh:
            bill.add(source, value)
    bill.record(body, existing.body.get(BILLED, []) if existing is not None else [])
    if existing is not None:
        parent, leaf = existing.parent_node_id, head.leaf
    else:
        parent = head.leaf if chained else checkpoint_node_id(cid)
        leaf = node_id if chained else head.leaf
    node = StoredNode(node_id, parent, WRITE_TYPE, body)
    try:
        revision = await commit(saver, where.session_id, head, node.record(), leaf, bill)
    except lash.RevisionConflict:
        return False
    head.revision, head.leaf = revision, leaf
    if chained:
        head.writes[node_id] = node
    return True


def pending_sends(serde: SerializerProtocol, head: Head, cid: str) -> list[Any]:
    """The pending sends of checkpoint ``cid`` (what names a Send task's node).


    Those of the head when ``cid`` is the head. Pregel sends a step's writes
    without waiting for the checkpoints before it to land, so ``cid`` may be ahead
    of the head: its sends are then those its parent's tasks wrote (the parent being
    the newest checkpoint before it with writes on the head's chain), in the order
    Pregel applies them.
    """
    if head.latest == cid:
        held = head.channels.get(TASKS)
        value = None if held is None else held.value(serde)
        return value if isinstance(value, list) else []
    if not on_chain(cid, head.latest):
        return []
    before = [w.body for w in head.writes.values() if w.body["checkpoint"] < cid]
    if not before:
        return []
    parent = max(body["checkpoint"] for body in before)
    mine = [body for body in before if body["checkpoint"] == parent]
    return [v for _, ch, v in decode_writes(serde, mine) if ch == TASKS]


# --- the head and the commit --------------------------------------------------------


async def known_head(saver: LashSaver, session_id: str, state: SessionState) -> Head:
    """The head as last seen (the commit's revision check catches a stale one)."""
    if state.head is None:
        return await saver.load_head(session_id, state)
    return state.head


async def commit(
    saver: LashSaver,
    session_id: str,
    head: Head,
    node: lash.SessionNodeRecord,
    leaf: str | None,
    bill: Bill | None = None,
) -> int:
    """Commit ``node``, a new token and ``bill``'s usage on ``head``'s revision.

    The new revision; the billed keys join the head's once the commit landed.
    """
    token, carrier = token_record()
    result = await saver.storage.session(session_id).commit_runtime_state(
        lash.RuntimeCommit(
            session_id=session_id,
            expected_head_revision=head.revision,
            config=SESSION_CONFIG,
            graph=lash.Append(nodes=[node, carrier], leaf_node_id=leaf),
            usage_deltas=() if bill is None else bill.deltas(),
        )
    )
    head.token = token
    if bill is not None:
        head.billed.update(bill.keys)
    return result.head_revision
