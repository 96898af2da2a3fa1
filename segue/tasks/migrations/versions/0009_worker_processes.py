"""worker processes: which models the running workers serve

Revision ID: 0009
Revises: 0008

Each process with workers keeps one row saying which models its workers render and why
any other cannot be rendered there (weights missing, no GPU), renewed every few seconds.
A create for a model that no live worker serves is then answered at once (404
ModelNotOpen, with the reason) instead of waiting in the queue until it expires.
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'worker_processes',
        sa.Column('id', sa.String(120), primary_key=True),
        sa.Column('served', sa.JSON(), nullable=False),
        sa.Column('unavailable', sa.JSON(), nullable=False),
        sa.Column('seen_at', sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('worker_processes')
