"""The audit trail: an append-only, hash-chained event table (`models`, `chain`, `db` triggers), signed
checkpoints, search and reports, and the pages, API and admin that read it.

`record()` is the one way to write an event; it is re-exported here so a service writes
`audit.record(...)` inside its own transaction.
"""

from governance.audit.chain import (  # noqa: F401
    ACTIONS,
    GENESIS_HASH,
    UnknownAuditAction,
    Verification,
    canonical_json,
    chain_head,
    compute_hash,
    format_timestamp,
    hash_fields,
    record,
    verify_chain,
)
