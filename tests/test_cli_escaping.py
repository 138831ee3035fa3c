"""Stored text reaches the terminal escaped, in every command that prints it.

Every stored string a command prints holds ESC, BEL and a C1 control (CSI,
``\\x9b``), and the JSON payloads a NUL too: a raw one could clear the screen,
retitle the window or recolour what follows. Each test runs one command on
memory://, SQLite and PostgreSQL and checks that no control character is printed and
that each seeded field is shown in its escaped form.
"""

from __future__ import annotations

import re

import pytest
from cli_seeding import seeded_url_fixture
from test_cli import CONFIG, run
from test_cli_triggers import ENV_SPEC

import lash_store_api as lash
from lash_store_api import ProcessEventType, ProcessHandleDescriptor, ProcessIdentity, SessionScope
from lash_store_api.backend.process_semantics import CORE_EVENT_TYPES
from lash_store_cli import facets
from lash_store_cli.render import visible

#: Clear the screen, set the window title (ended by BEL), then a C1 CSI.
HOSTILE = "\x1b[2J\x1b]0;owned\x07\x9b31m"
#: Inside JSON payloads NUL is storable too.
HOSTILE_JSON = HOSTILE + "\x00"

SID = "s" + HOSTILE
NODE = "n" + HOSTILE
SOURCE, MODEL = "src" + HOSTILE, "model" + HOSTILE
QUEUED_SID = "q" + HOSTILE  # queued work, never committed: no head
SOURCE_KEY, GROUP = "key" + HOSTILE, "group" + HOSTILE
PID, KIND, LABEL = "p" + HOSTILE, "kind" + HOSTILE, "label" + HOSTILE
EVENT_TYPE, OWNER = "ev" + HOSTILE, "owner" + HOSTILE
EXT_BACKEND, EXT_ID = "ext" + HOSTILE, "id" + HOSTILE
GRANT_KIND, GRANT_LABEL = "gk" + HOSTILE, "gl" + HOSTILE
TRIGGER_NAME, SOURCE_TYPE = "t" + HOSTILE, "st" + HOSTILE
TARGET_LABEL = "target" + HOSTILE
REF = "ref" + HOSTILE
#: A lease this long ends in the year 33,700, past what ``datetime`` can show.
LONG_TTL_MS = 10**15

#: What a terminal would act on: C0 but newline, DEL, C1, and the bidi and line marks.
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def text(hostile: str) -> lash.JSON:
    return {"type": "note", "text": "say" + hostile}


async def seed_sessions(storage: lash.Storage) -> None:
    await storage.session(SID).commit_runtime_state(
        lash.RuntimeCommit(
            session_id=SID,
            expected_head_revision=None,
            config=CONFIG,
            graph=lash.Append(
                nodes=[lash.SessionNodeRecord(node_id=NODE, payload=text(HOSTILE_JSON))],
                leaf_node_id=NODE,
            ),
            usage_deltas=[lash.TokenLedgerEntry(SOURCE, MODEL, lash.TokenUsage(3, 4))],
        )
    )
    work = storage.session(QUEUED_SID)
    assert isinstance(work, lash.QueuedWork)
    await work.enqueue_queued_work(
        lash.QueuedWorkBatchDraft(
            session_id=QUEUED_SID,
            delivery_policy=lash.DeliveryPolicy.EARLIEST_SAFE_BOUNDARY,
            slot_policy=lash.SlotPolicy.EXCLUSIVE,
            payloads=[text(HOSTILE_JSON)],
            source_key=SOURCE_KEY,
            merge_key=("group", GROUP),
        )
    )


async def seed_process(storage: lash.Storage) -> None:
    reg = storage.processes
    await reg.register_process(
        lash.ProcessRegistration(
            id=PID,
            input={"type": "external", "metadata": HOSTILE_JSON},
            identity=ProcessIdentity(KIND, LABEL),
            event_types=[*CORE_EVENT_TYPES, ProcessEventType(EVENT_TYPE)],
            provenance={"originator": {"type": "host"}},
            wake_target=SessionScope(SID),
        )
    )
    await reg.append_event(PID, lash.ProcessEventAppendRequest(EVENT_TYPE, text(HOSTILE_JSON)))
    await reg.grant_handle(SessionScope(SID), PID, ProcessHandleDescriptor(GRANT_KIND, GRANT_LABEL))
    await reg.set_process_wait(PID, lash.WaitState({"kind": "signal" + HOSTILE_JSON}, 1))
    await reg.set_external_ref(PID, lash.ProcessExternalRef(EXT_BACKEND, EXT_ID))
    await reg.claim_process_lease(PID, OWNER, LONG_TTL_MS)


async def seed_triggers(storage: lash.Storage) -> None:
    await storage.triggers.register_subscription(
        lash.TriggerSubscriptionDraft(
            registrant={"type": "session", "scope": {"session_id": SID}},
            env_ref=lash.execution_env_ref(ENV_SPEC),
            source_type=SOURCE_TYPE,
            source_key=SOURCE_KEY,
            source={"path": "/hook" + HOSTILE_JSON},
            payload_schema={"schema": {}},
            target={"tool": "build"},
            target_identity=ProcessIdentity(KIND, TARGET_LABEL),
            name=TRIGGER_NAME,
        )
    )
    await storage.artifacts.put_artifact_bytes(REF, "", b"\x1b[2J")


async def seed(url: str, *, close: bool = False) -> lash.Storage:
    storage = await lash.open_storage(url)
    await seed_sessions(storage)
    await seed_process(storage)
    await seed_triggers(storage)
    if close:
        await storage.aclose()
    return storage


url = seeded_url_fixture(seed, "cli-escaping")


def shown(*argv: str) -> str:
    """The command's output, after checking it succeeded and printed no control character."""
    code, out, err = run(*argv)
    assert (code, err) == (0, ""), err
    printed = "\n".join(out)
    assert CONTROL.findall(printed) == []
    return printed


def assert_escaped(printed: str, *fields: str) -> None:
    for field in fields:
        assert visible(field) in printed, field


def test_visible_escapes_every_control_character_and_only_those() -> None:
    controls = [chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x202E, 0x2028]]
    for char in controls:
        assert CONTROL.search(visible(char)) is None, repr(char)
    assert visible("\x1b[31m\x07\x00\x9b\u202e") == "\\x1b[31m\\x07\\x00\\x9b\\u202e"
    plain = "plain ünïcode ✓ │ ◀ … tab-free"
    assert visible(plain) == plain
    assert visible(visible(HOSTILE)) == visible(HOSTILE)


def test_sessions_escapes_session_ids(url: str) -> None:
    assert_escaped(shown("sessions", url), SID)


def test_show_escapes_ids_payloads_sources_and_models(url: str) -> None:
    printed = shown("show", url, SID)
    assert_escaped(printed, SID, NODE, "say" + HOSTILE_JSON, SOURCE, MODEL)


def test_show_of_a_session_with_queued_work_but_no_head(url: str) -> None:
    printed = shown("show", url, QUEUED_SID)
    assert printed.splitlines() == [
        f"session {visible(QUEUED_SID)}  no head yet (nothing committed)",
        "",
        "queued work  1 batch: 1 pending, 0 claimed",
    ]


def test_usage_escapes_model_names(url: str) -> None:
    assert_escaped(shown("usage", url), MODEL)


def test_queue_escapes_the_session_source_key_and_merge_group(url: str) -> None:
    assert_escaped(shown("queue", url, QUEUED_SID), QUEUED_SID, SOURCE_KEY, GROUP)


def test_processes_escapes_ids_kinds_and_labels(url: str) -> None:
    assert_escaped(shown("processes", url), PID, KIND, LABEL)


def test_process_escapes_every_field_and_shows_a_lease_past_year_9999(url: str) -> None:
    printed = shown("process", url, PID)
    assert_escaped(
        printed,
        PID,
        KIND,
        LABEL,
        SID,
        "signal" + HOSTILE_JSON,
        EXT_BACKEND,
        EXT_ID,
        GRANT_KIND,
        GRANT_LABEL,
        OWNER,
        EVENT_TYPE,
        "say" + HOSTILE_JSON,
    )
    lease = next(line for line in printed.splitlines() if line.startswith("lease"))
    assert lease.endswith(" ms since epoch") and "live until" in lease


def test_triggers_escapes_registrant_name_source_and_target(url: str) -> None:
    printed = shown("triggers", url)
    assert_escaped(printed, SID, TRIGGER_NAME, SOURCE_TYPE, SOURCE_KEY, TARGET_LABEL)


def test_artifacts_escapes_refs(url: str) -> None:
    assert_escaped(shown("artifacts", url), REF)


def test_an_error_quoting_stored_text_is_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A driver's error may quote a stored value as it is (e.g. a key in a DETAIL line)."""

    async def fails(storage: lash.Storage, shown: str, out: object) -> None:
        raise lash.BackendError(f"duplicate key {HOSTILE_JSON}")

    monkeypatch.setattr(facets, "artifacts", lambda **flags: fails)
    code, out, err = run("artifacts", "memory://")
    assert (code, out) == (1, [])
    assert err == f"lash-store: error: duplicate key {visible(HOSTILE_JSON)}\n"


def test_a_usage_error_quoting_an_argument_is_escaped() -> None:
    """A script may pass stored text on (an id it listed); click quotes an extra
    argument as given: the usage error shows it escaped."""
    code, out, err = run("sessions", "memory://", "extra" + HOSTILE)
    assert (code, out) == (2, [])
    assert CONTROL.findall(err) == [] and f"extra{visible(HOSTILE)}" in err


def test_delete_escapes_the_session_and_the_processes_left_without_a_grant(url: str) -> None:
    printed = shown("delete", url, SID, "--yes")
    assert printed.startswith(f"deleted session {SID!r} from ")
    assert_escaped(printed, PID)
