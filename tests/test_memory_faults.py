"""A commit that fails part-way through the memory backend writes nothing."""

from __future__ import annotations

import pytest

import lash_store_api as lash
import lash_store_api.backend.commit as kit_commit
from lash_store_api.backend.codec import encode_node


def commit(revision: int | None, *node_ids: str, turn: str | None = None) -> lash.RuntimeCommit:
    return lash.RuntimeCommit(
        session_id="s",
        expected_head_revision=revision,
        config=lash.PersistedSessionConfig("p", {"id": "m"}),
        graph=lash.Append(
            nodes=[lash.SessionNodeRecord(node_id=n, payload={"n": n}) for n in node_ids],
            leaf_node_id=node_ids[-1] if node_ids else None,
        ),
        checkpoint=lash.HydratedSessionCheckpoint(tool_state={"rev": revision}),
        usage_deltas=[lash.TokenLedgerEntry("agent", "m", lash.TokenUsage(input_tokens=5))],
        turn_commit=None if turn is None else lash.RuntimeTurnCommitStamp("s", turn, "h"),
    )


async def test_failure_while_encoding_a_node_leaves_the_session_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with await lash.open_storage("memory://") as storage:
        store = storage.session("s")
        await store.commit_runtime_state(commit(None, "a"))
        before = await store.load_session(lash.FullGraph())
        blobs_before = dict(storage._state.blobs)  # type: ignore[attr-defined]

        def exploding(node: lash.SessionNodeRecord) -> bytes:
            if node.node_id == "boom":
                raise RuntimeError("disk on fire")
            return encode_node(node)

        monkeypatch.setattr(kit_commit, "encode_node", exploding)
        with pytest.raises(RuntimeError):
            await store.commit_runtime_state(commit(1, "b", "boom", turn="t-2"))
        monkeypatch.undo()

        assert await store.load_session(lash.FullGraph()) == before
        assert storage._state.blobs == blobs_before  # type: ignore[attr-defined]
        # The turn stamp was not recorded: the same turn commits normally now.
        result = await store.commit_runtime_state(commit(1, "b", "c", turn="t-2"))
        assert result.head_revision == 2
        after = await store.load_session(lash.FullGraph())
        assert after is not None
        assert [n.node_id for n in after.graph.nodes] == ["a", "b", "c"]
        assert after.token_ledger[0].usage.input_tokens == 10


async def test_missing_or_corrupt_checkpoint_names_session_and_ref() -> None:
    async with await lash.open_storage("memory://") as storage:
        store = storage.session("s")
        result = await store.commit_runtime_state(commit(None, "a"))
        blobs = storage._state.blobs  # type: ignore[attr-defined]
        blobs[result.checkpoint_ref] = b"\xc1 not an envelope"
        with pytest.raises(lash.BackendError) as corrupt:
            await store.load_session(lash.FullGraph())
        del blobs[result.checkpoint_ref]
        with pytest.raises(lash.BackendError) as missing:
            await store.load_session(lash.ActivePath(None))
        for info in (corrupt, missing):
            assert info.value.session_id == "s"
            assert info.value.record == result.checkpoint_ref
            assert result.checkpoint_ref in str(info.value)
        # Other reads of the session still work.
        assert await store.load_node("a") is not None
