"""task inputs: a request's images and reference media move out of the task row

Revision ID: 0006
Revises: 0005

Data URLs made ``tasks.request`` megabytes, read by every poll, listing and claim. The
input media now live in ``task_inputs`` (one row per task, deleted with it); the task
row keeps the request's settings.
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

INPUTS = ('images', 'media')
BATCH = 200

tasks = sa.table('tasks', sa.column('id', sa.String), sa.column('request', sa.JSON))
task_inputs = sa.table('task_inputs', sa.column('task_id', sa.String),
                       sa.column('images', sa.JSON), sa.column('media', sa.JSON))


def upgrade() -> None:
    op.create_table('task_inputs',
    sa.Column('task_id', sa.String(length=40), nullable=False),
    sa.Column('images', sa.JSON(), nullable=False),
    sa.Column('media', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('task_id')
    )
    conn = op.get_bind()
    ids = [row.id for row in conn.execute(sa.select(tasks.c.id).order_by(tasks.c.id))]
    for start in range(0, len(ids), BATCH):  # a batch at a time: requests may be megabytes
        rows = conn.execute(sa.select(tasks.c.id, tasks.c.request)
                            .where(tasks.c.id.in_(ids[start:start + BATCH]))).all()
        conn.execute(task_inputs.insert(), [
            {'task_id': r.id, **{f: (r.request or {}).get(f, []) for f in INPUTS}} for r in rows])
        for r in rows:
            settings = {k: v for k, v in (r.request or {}).items() if k not in INPUTS}
            conn.execute(tasks.update().where(tasks.c.id == r.id).values(request=settings))


def downgrade() -> None:
    conn = op.get_bind()
    ids = [row.id for row in conn.execute(sa.select(tasks.c.id).order_by(tasks.c.id))]
    for start in range(0, len(ids), BATCH):
        rows = conn.execute(
            sa.select(tasks.c.id, tasks.c.request, task_inputs.c.images, task_inputs.c.media)
            .join(task_inputs, task_inputs.c.task_id == tasks.c.id)
            .where(tasks.c.id.in_(ids[start:start + BATCH]))).all()
        for r in rows:
            conn.execute(tasks.update().where(tasks.c.id == r.id).values(
                request={**(r.request or {}), 'images': r.images, 'media': r.media}))
    op.drop_table('task_inputs')
