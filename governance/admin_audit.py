"""Admin for the audit trail (read-only) and audited user/group administration. Owned by the audit issue."""
