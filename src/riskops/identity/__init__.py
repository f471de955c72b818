"""People and keys: principals with one role each, authenticated by a random API key."""

from riskops.identity.principals import (
    ROLES,
    AuthError,
    Principal,
    add_principal,
    authenticate,
    get_principal,
    list_principals,
    principal_for_mlflow_user,
    revoke_principal,
)
from riskops.identity.roles import PERMISSIONS, Forbidden, require

__all__ = [
    "PERMISSIONS",
    "ROLES",
    "AuthError",
    "Forbidden",
    "Principal",
    "add_principal",
    "authenticate",
    "get_principal",
    "list_principals",
    "principal_for_mlflow_user",
    "require",
    "revoke_principal",
]
