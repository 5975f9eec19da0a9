"""Changes of who may do what on a registered model (django-guardian object grants), each audited in
the same transaction. Reads of the same rules live in governance.access, below the audit trail."""

from django.db import transaction
from guardian.shortcuts import assign_perm, get_group_perms, get_user_perms, remove_perm

from governance import audit


def object_permissions_set(*, actor, obj, perms, user=None, group=None, source_ip: str | None = None) -> dict:
    """Make `user`'s or `group`'s django-guardian grants on `obj` exactly `perms` (codenames); every
    grant and revoke is audited (permission.granted / permission.revoked) in the same transaction."""
    holder = user if user is not None else group
    label = f"user:{user.get_username()}" if user is not None else f"group:{group.name}"
    with transaction.atomic():
        current = set(get_user_perms(user, obj) if user is not None else get_group_perms(group, obj))
        wanted = set(perms)
        for codename in sorted(wanted - current):
            assign_perm(codename, holder, obj)
            audit.record(actor=actor, action="permission.granted", model=getattr(obj, "name", ""),
                         before=None, after={"holder": label, "permission": codename, "object": str(obj)},
                         source_ip=source_ip)
        for codename in sorted(current - wanted):
            remove_perm(codename, holder, obj)
            audit.record(actor=actor, action="permission.revoked", model=getattr(obj, "name", ""),
                         before={"holder": label, "permission": codename, "object": str(obj)}, after=None,
                         source_ip=source_ip)
    return {"granted": sorted(wanted - current), "revoked": sorted(current - wanted)}
