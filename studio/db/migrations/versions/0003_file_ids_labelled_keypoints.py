"""remembered dataset-file ids in their own table; media.labelled; labels.keypoints

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

COCO ids were kept in one settings entry per format, merged on every import and export: an export's
renumbering overwrote what an imported file's ids meant, and a results file then landed on other
images. Each file's ids now have their own rows. `media.labelled` records that a dataset file listed
an image as labelled (empty or not), so evaluation counts false positives on it. `labels.keypoints`
keeps a COCO category's keypoint names and skeleton. The old `ids.<format>` settings become the rows
of one file named LEGACY_FILE, so results files that resolved before the upgrade still resolve.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

LEGACY_FILE = '(ids remembered before Studio kept them per file)'


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
    # plain ALTER TABLE ADD COLUMN, never batch mode: on SQLite that rebuilds the table, and dropping the
    # old one with foreign keys on would cascade-delete every annotation of the project
    op.add_column('media', sa.Column('labelled', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('labels', sa.Column('keypoints', sa.JSON(), nullable=True))
    _move_remembered_ids()


def _move_remembered_ids() -> None:
    """settings `ids.<format>` = {"v": {"images": {number: [media, frame]}, "labels": {number: name}}} -> rows."""
    conn = op.get_bind()
    settings = sa.table('settings', sa.column('key', sa.String), sa.column('value', sa.JSON))
    labels = sa.table('labels', sa.column('id', sa.Integer), sa.column('name', sa.String))
    media = sa.table('media', sa.column('id', sa.Integer))
    file_ids = sa.table(
        'file_ids', sa.column('format', sa.String), sa.column('file', sa.String), sa.column('kind', sa.String),
        sa.column('number', sa.BigInteger), sa.column('media_id', sa.Integer), sa.column('frame', sa.Integer),
        sa.column('label_id', sa.Integer),
    )
    label_ids = dict(conn.execute(sa.select(labels.c.name, labels.c.id)).all())
    media_ids = set(conn.execute(sa.select(media.c.id)).scalars())
    rows = []
    for key, value in conn.execute(sa.select(settings.c.key, settings.c.value).where(settings.c.key.like('ids.%'))).all():
        stored = (value or {}).get('v') or {}
        row = {'format': key[len('ids.'):], 'file': LEGACY_FILE}
        for number, (media_id, frame) in (stored.get('images') or {}).items():
            rows.append({**row, 'kind': 'image', 'number': int(number), 'frame': int(frame or 0), 'label_id': None,
                         'media_id': media_id if media_id in media_ids else None})
        for number, name in (stored.get('labels') or {}).items():
            rows.append({**row, 'kind': 'category', 'number': int(number), 'frame': 0, 'media_id': None,
                         'label_id': label_ids.get(name)})
    if rows:
        op.bulk_insert(file_ids, rows)
    op.execute(settings.delete().where(settings.c.key.like('ids.%')))


def downgrade() -> None:
    op.drop_column('labels', 'keypoints')  # SQLite 3.35+ drops a column in place (see upgrade: no batch mode)
    op.drop_column('media', 'labelled')
    op.drop_index(op.f('ix_file_ids_media_id'), table_name='file_ids')
    op.drop_table('file_ids')
