"""``lash-store triggers`` and ``lash-store artifacts``: their rows, filters and empty stores.

Seeded as tests/test_cli.py seeds sessions: a named ``memory://`` storage kept
open while the command runs, a new SQLite file, and a fresh PostgreSQL schema.
"""

from __future__ import annotations

import pytest
from cli_seeding import seeded_url_fixture
from test_cli import run

import lash_store_api as lash

MODULE_REF = "lashlang:v1:sha256:" + "a" * 64
ENV_SPEC: lash.JSON = {"runtime": "python"}


def draft(registrant: lash.JSON, key: str, name: str | None) -> lash.TriggerSubscriptionDraft:
    return lash.TriggerSubscriptionDraft(
        registrant=registrant,
        env_ref=lash.execution_env_ref(ENV_SPEC),
        source_type="webhook",
        source_key=key,
        source={"path": "/build"},
        payload_schema={"schema": {}},
        target={"tool": "build"},
        target_identity=lash.ProcessIdentity("tool", "build"),
        name=name,
    )


async def seed(url: str, *, close: bool = False) -> lash.Storage:
    """Three subscriptions (s-1's second one cancelled, one of the host), three artifacts."""
    storage = await lash.open_storage(url)
    triggers = storage.triggers
    key = await triggers.source_key_for_subscription("webhook", {"path": "/build"})
    s1: lash.JSON = {"type": "session", "scope": {"session_id": "s-1"}}
    await triggers.register_subscription(draft(s1, key, "on-build"))
    second = await triggers.register_subscription(draft(s1, key, None))
    assert await triggers.cancel_subscription("s-1", second.handle)
    await triggers.register_subscription(draft({"type": "host"}, key, "nightly"))
    artifacts = storage.artifacts
    await artifacts.put_module_artifact({"module_ref": MODULE_REF, "ir": []})
    await artifacts.put_artifact_bytes("wasm:1", "", b"\x00asm")
    env = lash.execution_env_ref(ENV_SPEC)
    await artifacts.put_process_execution_env(env, b'{"runtime": "python"}')
    if close:
        await storage.aclose()
    return storage


url = seeded_url_fixture(seed, "cli-triggers")


def test_triggers_lists_every_subscription_by_scope_and_handle(url: str) -> None:
    code, out, err = run("triggers", url)
    assert (code, err) == (0, "")
    assert out[0] == "3 subscriptions: 2 enabled, 1 disabled"
    assert out[1].split() == [
        "handle",
        "registrant",
        "name",
        "source",
        "type",
        "source",
        "key",
        "target",
        "state",
    ]
    rows = [line.split() for line in out[2:]]
    assert [(r[0], r[1], r[2], r[6]) for r in rows] == [
        ("trigger:3", "host", "nightly", "enabled"),
        ("trigger:1", "session:s-1", "on-build", "enabled"),
        ("trigger:2", "session:s-1", "-", "disabled"),
    ]
    assert all(r[3] == "webhook" and r[4].startswith("source:webhook:sha256:") for r in rows)


def test_triggers_of_one_session(url: str) -> None:
    code, out, _ = run("triggers", url, "--session", "s-1")
    assert code == 0
    assert out[0] == "2 subscriptions: 1 enabled, 1 disabled"
    assert [line.split()[0] for line in out[2:]] == ["trigger:1", "trigger:2"]
    code, out, _ = run("triggers", url, "--session", "s-none")
    assert code == 0
    assert out[0].startswith(f"no trigger subscriptions of session 's-none' in {url}")


def test_artifacts_lists_each_kind_with_its_size(url: str) -> None:
    code, out, err = run("artifacts", url)
    assert (code, err) == (0, "")
    assert [line.split() for line in out] == [
        ["kind", "ref", "bytes"],
        ["module", MODULE_REF, "108"],
        ["bytes", "wasm:1", "4"],
        ["env", lash.execution_env_ref(ENV_SPEC), "21"],
    ]


@pytest.mark.parametrize("command", ["triggers", "artifacts"])
def test_an_empty_store_says_so(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LASH_STORE_URL", raising=False)
    code, out, _ = run(command, "memory://")
    assert code == 0
    assert out[0].startswith("no ") and "live only inside one process" in out[0]
