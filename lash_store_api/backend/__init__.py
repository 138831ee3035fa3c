"""The backend kit: what every backend builds on, ours and third parties' alike.

A backend does I/O and reports what it observed; the kit validates input,
encodes records, plans each commit and turns the backend's observation into
the result or the contract's error, in one fixed order. See
docs/writing-a-backend.md.

- :mod:`.commit`: the commit pipeline (plan, observation, ``decide_commit``).
- :mod:`.sessions`: the session handle and factory bases, reads from stored rows.
- :mod:`.attachments`: the manifest I/O protocol, the attachment store base.
- :mod:`.queued_work`: the queued-work base; re-exports the three below.
- :mod:`.queued_work_rows`: a batch as stored, its columns, the row an enqueue inserts.
- :mod:`.queued_work_claims`: the claim state machine, a commit's completion checks.
- :mod:`.queued_work_validation`: queue input validation.
- :mod:`.triggers`: trigger keys, hashes and ids, validation, the trigger store base.
- :mod:`.trigger_rows`: a trigger's stored rows: columns, encoding, matching, order.
- :mod:`.artifacts`: the module verifier option, blob refs, the artifact store base.
- :mod:`.maintenance`: the GC mark phase and policy, the vacuum and blob-store bases.
- :mod:`.validation`: one input validator (``InvalidRequest`` naming the field); re-exports:
- :mod:`.value_validation`: text, ids, integers, bytes, lists, JSON;
- :mod:`.session_validation`: a runtime commit, session meta, a create request.
- :mod:`.codec`: the stored byte encodings under one name; re-exports the three below.
- :mod:`.codec_base`: canonical JSON, SHA-256 refs, the record frame and its version rule.
- :mod:`.checkpoint_codec`: a checkpoint's envelope and manifest as stored.
- :mod:`.node_codec`: graph nodes and agent frames as stored, the bulk node decode.
- :mod:`.graph`: read-scope selection, the token ledger merge.
- :mod:`.clock`: the time records are stamped with, and the queue's injectable clock.
- :mod:`.urls`: a storage URL's query parameters (each once), read alike by every backend.
- :mod:`.storage_options`: the options every backend takes, its scheme check, keyword options
  and the query of the URL a storage reports.
- :mod:`.store_storage`: a storage whose facets and handles are all built on one store object.
- :mod:`.processes`: the process registry base: every operation, leases, grants, waiting.
- :mod:`.process_io`: the I/O a registry backend writes, and the rows it exchanges.
- :mod:`.process_codec`: process records, events and leases as stored, a planned append's texts.
- :mod:`.process_registration`: every pure decision of ``register_process``.
- :mod:`.process_plan`: ``append_event`` top to bottom, one flow for every backend: the plan
  made before any I/O, the checks and writes the backend makes (which SQL may restate), the
  decision on what it saw.
- :mod:`.process_append`: the contract's rules of one append, which that flow applies.
- :mod:`.process_semantics`: event-type declarations, core types, terminal and wake materialization.
- :mod:`.process_wakes`: wake ids, deliveries and the queued work a wake becomes.
- :mod:`.payload_schema`: the payload-schema subset an event type declares.
- :mod:`.selectors`: the selector language, JSON pointers, ``text`` and ``truthy``.
"""

from __future__ import annotations

from ..attachments import attachment_ref
from ..common import redact_url
from ..storage import StorageBase

__all__ = ["StorageBase", "attachment_ref", "redact_url"]
