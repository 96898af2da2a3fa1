"""lapsed-files index: succeeded tasks whose files are still kept, by link expiry

Revision ID: 0007
Revises: 0006

Housekeeping (every ``SEGUE_SWEEP_INTERVAL`` in every worker and API process) looks for
tasks whose links have lapsed but whose files are kept. Without an index that was a scan
of the whole task table, once a minute per process: with hundreds of worker processes and
a week of records, the heaviest load on the database. The partial index holds only the
tasks that still have files.
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

KEPT = sa.text("video_key IS NOT NULL")


def upgrade() -> None:
    op.create_index('ix_tasks_lapsed_files', 'tasks', ['links_expire_at'],
                    postgresql_where=KEPT, sqlite_where=KEPT)


def downgrade() -> None:
    op.drop_index('ix_tasks_lapsed_files', table_name='tasks')
