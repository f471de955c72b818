"""Service-level objectives that act: breach events, their two sources, the rollback policy."""
