"""Project storage: SQLAlchemy ORM, migrations and the `Project` service. Imports no Qt."""

from studio.db.project import Project, Source

__all__ = ["Project", "Source"]
