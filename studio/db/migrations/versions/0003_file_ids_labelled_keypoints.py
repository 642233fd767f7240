"""remembered dataset-file ids in their own table; media.labelled; labels.keypoints

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

COCO ids were kept in one settings entry per format, merged on every import and export: an export's
renumbering overwrote what an imported file's ids meant, and a results file then landed on other
images. Each file's ids now have their own rows. `media.labelled` records that a dataset file listed
an image as labelled (empty or not), so evaluation counts false positives on it. `labels.keypoints`
keeps a COCO category's keypoint names and skeleton. Old `ids.<format>` settings are left unread:
what they meant can no longer be told apart.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'file_ids',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('format', sa.String(length=32), nullable=False),
        sa.Column('file', sa.String(length=4096), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('number', sa.BigInteger(), nullable=False),
        sa.Column('media_id', sa.Integer(), nullable=True),
        sa.Column('frame', sa.Integer(), nullable=False),
        sa.Column('label_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['label_id'], ['labels.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['media_id'], ['media.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('format', 'file', 'kind', 'number', name='uq_file_ids_number'),
    )
    op.create_index(op.f('ix_file_ids_media_id'), 'file_ids', ['media_id'], unique=False)
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.add_column(sa.Column('labelled', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('labels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('keypoints', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('labels', schema=None) as batch_op:
        batch_op.drop_column('keypoints')
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.drop_column('labelled')
    op.drop_index(op.f('ix_file_ids_media_id'), table_name='file_ids')
    op.drop_table('file_ids')
