"""Domain types and geometry. Imports no Qt, SQLAlchemy or torch (checked by import-linter)."""
