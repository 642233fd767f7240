"""the train/val split and the models trained on the project

Revision ID: 0007
Revises: 0008
Create Date: 2026-12-01

`splits` keeps each media's side (train or val) so later trainings validate on the same images;
`trained_models` keeps each training's weights file, sha256, parameters, split, history and metrics.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0008'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('splits',
    sa.Column('media_id', sa.Integer(), nullable=False),
    sa.Column('split', sa.String(length=8), nullable=False),
    sa.ForeignKeyConstraint(['media_id'], ['media.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('media_id')
    )
    op.create_table('trained_models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('task', sa.String(length=16), nullable=False),
    sa.Column('plugin', sa.String(length=256), nullable=False),
    sa.Column('base', sa.String(length=4096), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('weights', sa.String(length=4096), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('split', sa.JSON(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('history', sa.JSON(), nullable=False),
    sa.Column('validation_run_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['validation_run_id'], ['runs.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('trained_models')
    op.drop_table('splits')
