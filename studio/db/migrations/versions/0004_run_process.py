"""record which process runs a model run (pid, host, process start time)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

A run left "running" by a process that was killed (SIGKILL, a crash, a power cut) stayed "running" forever.
With the process recorded, opening the project marks such runs "interrupted": a run is still going only
while a process with that pid and that start time exists on that host.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.add_column(sa.Column('pid', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('host', sa.String(length=256), nullable=True))
        batch.add_column(sa.Column('process_started', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('process_started')
        batch.drop_column('host')
        batch.drop_column('pid')
