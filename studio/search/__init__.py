"""Embedding index and queries (CLIP search). Imports no Qt."""
