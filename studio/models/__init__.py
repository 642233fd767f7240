"""Plugin protocols, registry, weights manager and device choice. Imports no Qt and no model library."""
