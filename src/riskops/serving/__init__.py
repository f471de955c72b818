"""The scoring service: champions answering requests, with exact reason codes."""
