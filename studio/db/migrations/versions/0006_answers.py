"""answers: questions asked of vision-language models about images and regions, with their answers

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0004'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'answers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('media_id', sa.Integer(), nullable=False),
        sa.Column('frame', sa.Integer(), nullable=False),
        sa.Column('annotation_id', sa.Integer(), nullable=True),
        sa.Column('region', sa.JSON(), nullable=True),
        sa.Column('conversation', sa.String(length=64), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=True),
        sa.Column('question', sa.Text(), nullable=False),
        sa.Column('answer', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('backend', sa.String(length=256), nullable=False),
        sa.Column('model', sa.String(length=1024), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('seconds', sa.Float(), nullable=False),
        sa.Column('first_token_seconds', sa.Float(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['annotation_id'], ['annotations.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['media_id'], ['media.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_answers_media', 'answers', ['media_id', 'frame', 'annotation_id'])
    op.create_index(op.f('ix_answers_conversation'), 'answers', ['conversation'])
    op.create_index(op.f('ix_answers_run_id'), 'answers', ['run_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_answers_run_id'), table_name='answers')
    op.drop_index(op.f('ix_answers_conversation'), table_name='answers')
    op.drop_index('ix_answers_media', table_name='answers')
    op.drop_table('answers')
