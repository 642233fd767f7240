"""tracks: an object's identity across video frames, with its "outside" ranges; annotations index track_id

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-01

A track's keyframes are ordinary annotations carrying its id, so everything that reads annotations keeps
working; the frames between keyframes are interpolated on demand and never stored.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0005'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'tracks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('media_id', sa.Integer(), nullable=False),
        sa.Column('label_id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=True),
        sa.Column('attributes', sa.JSON(), nullable=False),
        sa.Column('outside', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['label_id'], ['labels.id'], ondelete='RESTRICT'),
        sa.ForeignKeyConstraint(['media_id'], ['media.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_tracks_media_run', 'tracks', ['media_id', 'run_id'])
    op.create_index('ix_annotations_track', 'annotations', ['track_id'])


def downgrade() -> None:
    op.drop_index('ix_annotations_track', table_name='annotations')
    op.drop_index('ix_tracks_media_run', table_name='tracks')
    op.drop_table('tracks')
