"""index annotations by (run, media, frame, label) and (label, run) instead of run, label alone

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Loading one image's human annotations in a project of 1M scanned every human annotation (0.5 s): the
planner took the run_id index, and run_id IS NULL matches nearly all rows. The wider index answers it
directly; (label, run) makes per-label counts of a source an in-order, index-only scan.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_annotations_run', table_name='annotations')
    op.drop_index('ix_annotations_label', table_name='annotations')
    op.create_index('ix_annotations_run_media', 'annotations', ['run_id', 'media_id', 'frame', 'label_id'])
    op.create_index('ix_annotations_label_run', 'annotations', ['label_id', 'run_id'])


def downgrade() -> None:
    op.drop_index('ix_annotations_label_run', table_name='annotations')
    op.drop_index('ix_annotations_run_media', table_name='annotations')
    op.create_index('ix_annotations_label', 'annotations', ['label_id'])
    op.create_index('ix_annotations_run', 'annotations', ['run_id'])
