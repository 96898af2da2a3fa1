"""claim index: queued rows only, in claim order

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

QUEUED = sa.text("status = 'queued'")


def upgrade() -> None:
    op.create_index('ix_tasks_claim', 'tasks', ['service_tier', sa.text('priority DESC'), 'created_at'],
                    postgresql_where=QUEUED, sqlite_where=QUEUED)


def downgrade() -> None:
    op.drop_index('ix_tasks_claim', table_name='tasks')
