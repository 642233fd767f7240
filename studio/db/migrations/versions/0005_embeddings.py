"""embeddings: CLIP vectors per image, video frame and annotation crop, per model, as float16 blobs

Revision ID: 0005
Revises: 0006
Create Date: 2026-12-01

Search, zero-shot tagging and duplicate finding read these instead of re-encoding every image; the
`stamp` of each row lets `studio embed` skip what is unchanged. Tags were unique per (media, name), so a
zero-shot run could not propose a tag a person had set, nor two runs the same tag: now they are unique per
(media, name) among human tags and per (run, media, name) among a run's.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0006'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'embeddings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('model', sa.String(length=512), nullable=False),
        sa.Column('media_id', sa.Integer(), nullable=False),
        sa.Column('frame', sa.Integer(), nullable=False),
        sa.Column('annotation_id', sa.Integer(), nullable=True),
        sa.Column('dim', sa.Integer(), nullable=False),
        sa.Column('vector', sa.LargeBinary(), nullable=False),
        sa.Column('stamp', sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(['media_id'], ['media.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['annotation_id'], ['annotations.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_embeddings_model_media', 'embeddings', ['model', 'media_id', 'frame'])
    op.create_index('ix_embeddings_annotation', 'embeddings', ['annotation_id'])
    with op.batch_alter_table('tags') as batch:  # SQLite drops a table constraint by rebuilding the table
        batch.drop_constraint('uq_tags_media_name', type_='unique')
    op.create_index('uq_tags_human', 'tags', ['media_id', 'name'], unique=True,
                    sqlite_where=sa.text('run_id IS NULL'), postgresql_where=sa.text('run_id IS NULL'))
    op.create_index('uq_tags_run', 'tags', ['run_id', 'media_id', 'name'], unique=True,
                    sqlite_where=sa.text('run_id IS NOT NULL'), postgresql_where=sa.text('run_id IS NOT NULL'))


def downgrade() -> None:
    op.execute('DELETE FROM tags WHERE run_id IS NOT NULL')
    op.drop_index('uq_tags_run', table_name='tags')
    op.drop_index('uq_tags_human', table_name='tags')
    with op.batch_alter_table('tags') as batch:
        batch.create_unique_constraint('uq_tags_media_name', ['media_id', 'name'])
    op.drop_index('ix_embeddings_annotation', table_name='embeddings')
    op.drop_index('ix_embeddings_model_media', table_name='embeddings')
    op.drop_table('embeddings')
