"""Human sign-off, promotion and rollback: how a version reaches production, on the record."""
