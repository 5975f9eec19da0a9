"""ApiToken: knox's token (only a SHA-512 digest and the first characters are stored) plus what a
person needs to manage it: a name, a scope, and when it was last used."""

from django.db import models
from knox.models import AbstractAuthToken


class TokenScope(models.TextChoices):
    """What a token may do beyond what its user may do (it never adds permissions; it only narrows them).
    Each scope includes the one before it."""

    READ = "read", "Read only"
    REQUEST = "request", "Read and request promotions"
    DEPLOY = "deploy", "Read, request, deploy and roll back"
    # Approve, reject and policy changes too: for a person's own scripts, not for a pipeline.
    FULL = "full", "Everything the user may do"


SCOPE_ORDER = [TokenScope.READ, TokenScope.REQUEST, TokenScope.DEPLOY, TokenScope.FULL]


def scope_allows(scope: str, needed: str) -> bool:
    return scope in SCOPE_ORDER and needed in SCOPE_ORDER and SCOPE_ORDER.index(scope) >= SCOPE_ORDER.index(needed)


class ApiToken(AbstractAuthToken):
    """A user's API token (KNOX_TOKEN_MODEL). The secret itself is shown once at creation and never stored."""

    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=16, choices=TokenScope.choices, default=TokenScope.READ)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        constraints = [models.CheckConstraint(condition=models.Q(scope__in=TokenScope.values),
                                              name="apitoken_scope_valid")]

    def __str__(self) -> str:
        return f"{self.name} ({self.token_key}…, {self.scope})"
