"""Changes of who may do what: per-model grants (django-guardian object permissions), user accounts
(creation, activation, staff/superuser flags, deletion), group membership and group permissions.

Each service checks the actor's permission, writes, and records the change with before and after in
the same transaction. The admin (governance.admin, governance.workflow.admin) calls these and never
writes users, groups or grants itself; a command, a script or an API must do the same. Reads of the
same rules live in governance.access, below the audit trail.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db import transaction
from guardian.models import GroupObjectPermission, UserObjectPermission
from guardian.shortcuts import assign_perm, get_group_perms, get_user_perms, remove_perm

from governance import audit

# The fields of an account that decide what it may do, and those that only say who it is.
PRIVILEGE_FIELDS = ("is_staff", "is_superuser")
PROFILE_FIELDS = ("username", "first_name", "last_name", "email")


def _require(actor, perm: str, *, what: str) -> None:
    if not (getattr(actor, "is_authenticated", False) and actor.is_active
            and (actor.is_superuser or actor.has_perm(perm))):
        raise PermissionDenied(f"You may not {what}.")


def _require_superuser_for(actor, target_is_superuser: bool) -> None:
    # Django's admin lets anyone with change_user tick "superuser": that would make every user editor a
    # superuser in waiting, and let them lock every superuser out.
    if target_is_superuser and not actor.is_superuser:
        raise PermissionDenied("Only a superuser may make, change or remove a superuser.")


def object_permissions_set(*, actor, obj, perms, user=None, group=None, source_ip: str | None = None) -> dict:
    """Make `user`'s or `group`'s django-guardian grants on `obj` exactly `perms` (codenames); every
    grant and revoke is audited (permission.granted / permission.revoked) in the same transaction.
    The actor needs the permission to change `obj` (what the admin's object-permission pages ask)."""
    meta = obj._meta
    _require(actor, f"{meta.app_label}.change_{meta.model_name}", what=f"change who may act on {obj}")
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


# --------------------------------------------------------------------------------------------------
# What a user or group holds (the "before" of a deletion)
# --------------------------------------------------------------------------------------------------


def _perm_label(p: Permission) -> str:
    return f"{p.content_type.app_label}.{p.codename}"


def _object_grants(rows) -> list[dict]:
    grants = []
    for row in rows.select_related("permission", "content_type"):
        obj = row.content_object
        grants.append({"model": getattr(obj, "name", None) or str(obj or f"{row.content_type.model}:{row.object_pk}"),
                       "permission": row.permission.codename})
    return sorted(grants, key=lambda g: (g["model"], g["permission"]))


def _user_holdings(user) -> dict:
    return {
        "user": user.get_username(),
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "permissions": sorted(_perm_label(p) for p in user.user_permissions.select_related("content_type")),
        "object_permissions": _object_grants(UserObjectPermission.objects.filter(user=user)),
    }


def _group_holdings(group) -> dict:
    return {
        "group": group.name,
        "members": sorted(group.user_set.values_list(get_user_model().USERNAME_FIELD, flat=True)),
        "permissions": sorted(_perm_label(p) for p in group.permissions.select_related("content_type")),
        "object_permissions": _object_grants(GroupObjectPermission.objects.filter(group=group)),
    }


# --------------------------------------------------------------------------------------------------
# Users
# --------------------------------------------------------------------------------------------------


def _flag_event(actor, user, fields, before_row, source_ip, action, comment) -> None:
    name = user.get_username()
    audit.record(actor=actor, action=action, source_ip=source_ip, comment=comment,
                 before={"user": name, **{f: getattr(before_row, f) for f in fields}},
                 after={"user": name, **{f: getattr(user, f) for f in fields}})


def user_save(*, actor, user, groups=None, permissions=None, source_ip: str | None = None):
    """Save a new or edited account (e.g. the admin's form applied to `user`) and record what changed:
    user.created; user.activated / user.deactivated; user.privileges_changed (staff, superuser);
    user.changed (username, names, email); then its groups and permissions as user_access_set does."""
    User = get_user_model()
    with transaction.atomic():
        _user_save(actor, user, User, source_ip)
        if groups is not None or permissions is not None:
            user_access_set(actor=actor, user=user, groups=groups, permissions=permissions, source_ip=source_ip)
    return user


def _user_save(actor, user, User, source_ip) -> None:
    """The account itself (not its groups or permissions); inside user_save's transaction."""
    stored = User.objects.select_for_update().filter(pk=user.pk).first() if user.pk else None
    if stored is None:
        _require(actor, "auth.add_user", what="create users")
        _require_superuser_for(actor, user.is_superuser)
        user.save()
        audit.record(actor=actor, action="user.created", source_ip=source_ip, before=None,
                     after={"user": user.get_username(), "is_active": user.is_active,
                            "is_staff": user.is_staff, "is_superuser": user.is_superuser},
                     comment=f"user {user.get_username()} created")
        return
    _require(actor, "auth.change_user", what="change users")
    _require_superuser_for(actor, stored.is_superuser or user.is_superuser)
    user.save()
    name = user.get_username()
    if stored.is_active != user.is_active:
        _flag_event(actor, user, ("is_active",), stored, source_ip,
                    "user.activated" if user.is_active else "user.deactivated",
                    f"user {name} {'activated' if user.is_active else 'deactivated'}")
    privileges = [f for f in PRIVILEGE_FIELDS if getattr(stored, f) != getattr(user, f)]
    if privileges:
        _flag_event(actor, user, PRIVILEGE_FIELDS, stored, source_ip, "user.privileges_changed",
                    f"user {name}: {', '.join(privileges)} changed")
    profile = [f for f in PROFILE_FIELDS if getattr(stored, f) != getattr(user, f)]
    if profile:
        audit.record(actor=actor, action="user.changed", source_ip=source_ip,
                     before={"user": stored.get_username(), **{f: getattr(stored, f) for f in profile}},
                     after={"user": name, **{f: getattr(user, f) for f in profile}},
                     comment=f"user {name}: {', '.join(profile)} changed")


def user_activation_set(*, actor, user, active: bool, source_ip: str | None = None):
    """Let an account sign in again, or stop it (user.activated / user.deactivated); no event when it
    already is so."""
    _require(actor, "auth.change_user", what="activate or deactivate users")
    User = get_user_model()
    with transaction.atomic():
        stored = User.objects.select_for_update().get(pk=user.pk)
        _require_superuser_for(actor, stored.is_superuser)
        if stored.is_active == bool(active):
            return stored
        User.objects.filter(pk=stored.pk).update(is_active=bool(active))
        user.is_active = bool(active)
        name = stored.get_username()
        audit.record(actor=actor, action="user.activated" if active else "user.deactivated", source_ip=source_ip,
                     before={"user": name, "is_active": stored.is_active}, after={"user": name, "is_active": active},
                     comment=f"user {name} {'activated' if active else 'deactivated'}")
    return user


def user_delete(*, actor, user, source_ip: str | None = None) -> None:
    """Delete an account; the event keeps everything it held (its groups, permissions and per-model
    grants vanish with it by cascade, so this is the only record of them)."""
    _require(actor, "auth.delete_user", what="delete users")
    with transaction.atomic():
        _require_superuser_for(actor, user.is_superuser)
        before = _user_holdings(user)
        user.delete()
        audit.record(actor=actor, action="user.deleted", source_ip=source_ip, before=before, after=None,
                     comment=f"user {before['user']} deleted")


def _membership_event(actor, *, user, group, added: bool, source_ip) -> None:
    payload = {"user": user.get_username(), "group": group.name}
    audit.record(actor=actor, action="group.member_added" if added else "group.member_removed",
                 after=payload if added else None, before=None if added else payload, source_ip=source_ip,
                 comment=f"{user.get_username()} {'added to' if added else 'removed from'} group {group.name}")


def _permission_events(actor, *, subject: str, before: set, after: set, source_ip, **target) -> None:
    for p in Permission.objects.filter(pk__in=after - before).select_related("content_type"):
        audit.record(actor=actor, action="permission.granted", after={"permission": _perm_label(p), **target},
                     comment=f"{_perm_label(p)} granted to {subject}", source_ip=source_ip)
    for p in Permission.objects.filter(pk__in=before - after).select_related("content_type"):
        audit.record(actor=actor, action="permission.revoked", before={"permission": _perm_label(p), **target},
                     comment=f"{_perm_label(p)} revoked from {subject}", source_ip=source_ip)


def user_access_set(*, actor, user, groups=None, permissions=None, source_ip: str | None = None) -> None:
    """Make `user`'s groups and/or model-level permissions exactly these (None: leave as is); every
    membership and permission added or removed is an event."""
    _require(actor, "auth.change_user", what="change users' groups or permissions")
    with transaction.atomic():
        if groups is not None:
            before = set(user.groups.values_list("pk", flat=True))
            wanted = {g.pk for g in groups}
            user.groups.set(wanted)
            for group in Group.objects.filter(pk__in=before ^ wanted).order_by("name"):
                _membership_event(actor, user=user, group=group, added=group.pk in wanted, source_ip=source_ip)
        if permissions is not None:
            before = set(user.user_permissions.values_list("pk", flat=True))
            wanted = {p.pk for p in permissions}
            user.user_permissions.set(wanted)
            _permission_events(actor, subject=f"user {user.get_username()}", before=before, after=wanted,
                               source_ip=source_ip, user=user.get_username())


# --------------------------------------------------------------------------------------------------
# Groups
# --------------------------------------------------------------------------------------------------


def group_save(*, actor, group, permissions=None, members=None, source_ip: str | None = None):
    """Save a new or renamed group and make its permissions and members exactly these (None: leave as
    is): group.created / group.changed, permission.granted / revoked, group.member_added / removed."""
    with transaction.atomic():
        stored = Group.objects.select_for_update().filter(pk=group.pk).first() if group.pk else None
        if stored is None:
            _require(actor, "auth.add_group", what="create groups")
            group.save()
            audit.record(actor=actor, action="group.created", before=None, after={"group": group.name},
                         source_ip=source_ip, comment=f"group {group.name} created")
        else:
            _require(actor, "auth.change_group", what="change groups")
            group.save()
            if stored.name != group.name:
                audit.record(actor=actor, action="group.changed", before={"group": stored.name},
                             after={"group": group.name}, source_ip=source_ip,
                             comment=f"group {stored.name} renamed to {group.name}")
        if permissions is not None:
            before = set(group.permissions.values_list("pk", flat=True))
            wanted = {p.pk for p in permissions}
            group.permissions.set(wanted)
            _permission_events(actor, subject=f"group {group.name}", before=before, after=wanted,
                               source_ip=source_ip, group=group.name)
        if members is not None:
            before = set(group.user_set.values_list("pk", flat=True))
            wanted = {u.pk for u in members}
            group.user_set.set(wanted)
            for user in get_user_model().objects.filter(pk__in=before ^ wanted).order_by("pk"):
                _membership_event(actor, user=user, group=group, added=user.pk in wanted, source_ip=source_ip)
    return group


def group_delete(*, actor, group, source_ip: str | None = None) -> None:
    """Delete a group; each member's removal is an event, and group.deleted keeps its permissions and
    per-model grants (they vanish with it by cascade)."""
    _require(actor, "auth.delete_group", what="delete groups")
    with transaction.atomic():
        before = _group_holdings(group)
        for user in group.user_set.order_by("pk"):
            _membership_event(actor, user=user, group=group, added=False, source_ip=source_ip)
        group.delete()
        audit.record(actor=actor, action="group.deleted", before=before, after=None, source_ip=source_ip,
                     comment=f"group {before['group']} deleted")


# --- Single sign-on -------------------------------------------------------------------------------------

IDP_ACTOR = "system:oidc"


def user_sync_from_idp(*, username: str, email: str = "", first_name: str = "", last_name: str = "",
                       roles: set[str], source_ip: str | None = None):
    """Sign-in through the identity provider: create the account on first sign-in (no usable password:
    it signs in only through the IdP) and make its role groups exactly `roles` (the IdP's groups mapped by
    OIDC_GROUP_ROLE_MAP), every change audited as `system:oidc`. Other groups (team grants) are left as
    the admins set them. Returns None, changing nothing, for a local account of the same name (local
    accounts, the break-glass admins among them, are never taken over by an IdP identity)."""
    from governance.access import ROLES

    User = get_user_model()
    with transaction.atomic():
        user = User.objects.filter(username=username).first()
        if user is not None and user.has_usable_password():
            return None
        if user is None:
            user = User(username=username, email=email, first_name=first_name, last_name=last_name)
            user.set_unusable_password()
            user.save()
            audit.record(actor_name=IDP_ACTOR, action="user.created", source_ip=source_ip, before=None,
                         after={"username": username, "email": email, "source": "oidc"},
                         comment=f"{username} signed in through single sign-on for the first time")
        elif (user.email, user.first_name, user.last_name) != (email, first_name, last_name):
            before = {f: getattr(user, f) for f in ("email", "first_name", "last_name")}
            user.email, user.first_name, user.last_name = email, first_name, last_name
            user.save(update_fields=["email", "first_name", "last_name"])
            audit.record(actor_name=IDP_ACTOR, action="user.changed", source_ip=source_ip, before=before,
                         after={f: getattr(user, f) for f in before}, comment=f"{username}'s profile from the IdP")
        if not user.is_active:
            return None  # deactivated here: the IdP does not reactivate
        current = {g.name: g for g in user.groups.filter(name__in=ROLES)}
        groups = {g.name: g for g in Group.objects.filter(name__in=roles & set(ROLES))}
        for name in sorted(set(groups) - set(current)):
            user.groups.add(groups[name])
            _idp_membership_event(user=user, group=groups[name], added=True, source_ip=source_ip)
        for name in sorted(set(current) - set(groups)):
            user.groups.remove(current[name])
            _idp_membership_event(user=user, group=current[name], added=False, source_ip=source_ip)
    return user


def _idp_membership_event(*, user, group, added: bool, source_ip) -> None:
    payload = {"user": user.get_username(), "group": group.name, "source": "oidc"}
    audit.record(actor_name=IDP_ACTOR, action="group.member_added" if added else "group.member_removed",
                 after=payload if added else None, before=None if added else payload, source_ip=source_ip,
                 comment=f"{user.get_username()} {'added to' if added else 'removed from'} group {group.name} "
                         "(identity provider's groups)")
