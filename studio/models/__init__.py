"""Plugin protocols, registry, weights manager and device choice. Imports no Qt and no model library."""

from studio.models.checkpoints import trust_checkpoint

__all__ = ["trust_checkpoint"]
