"""create ledger: the sliding-window rate limit counts creates, not surviving tasks

Revision ID: 0004
Revises: 0001
"""

import time

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0002'
branch_labels = None
depends_on = None

LEDGER_DAYS = 1  # longer than any rate window, so an upgrade forgets no create still counting


def upgrade() -> None:
    op.create_table('create_ledger',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('create_ledger', schema=None) as batch_op:
        batch_op.create_index('ix_create_ledger_key_created', ['key_id', 'created_at'],
                              unique=False)
    # the tasks created within the last day stand for their creates
    op.execute(sa.text(
        "INSERT INTO create_ledger (key_id, model, created_at) "
        "SELECT key_id, model, created_at FROM tasks WHERE created_at > :since"
    ).bindparams(since=time.time() - LEDGER_DAYS * 86_400))


def downgrade() -> None:
    with op.batch_alter_table('create_ledger', schema=None) as batch_op:
        batch_op.drop_index('ix_create_ledger_key_created')
    op.drop_table('create_ledger')
