"""Reserved for a later release; see docs/architecture.md."""
