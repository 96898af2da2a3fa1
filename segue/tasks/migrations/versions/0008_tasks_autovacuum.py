"""tasks autovacuum: vacuumed after 1 % of its rows are dead, not 20 %

Revision ID: 0008
Revises: 0007

Claims and finishes change a task's indexed status, so each leaves a dead tuple and index
entries behind; the claim walks the index of queued tasks past the dead ones until vacuum
removes them. PostgreSQL's default vacuums a table once a fifth of it is dead: on a task
table of millions of finished tasks that is hundreds of thousands of dead tuples in the
queue's indexes. 1 % keeps them to a few minutes of claims (``docs/deploy.md``).
SQLite has no such setting.
"""

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

SETTINGS = "autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE tasks SET ({SETTINGS})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE tasks RESET (autovacuum_vacuum_scale_factor, "
                   "autovacuum_analyze_scale_factor)")
