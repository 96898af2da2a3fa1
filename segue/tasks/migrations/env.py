"""Alembic environment: runs on the connection that ``segue.tasks.db.migrate`` passes in."""

from alembic import context

from segue.tasks.schema import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # command-line use: `alembic -x url=... upgrade head`
    from sqlalchemy import create_engine

    url = context.get_x_argument(as_dictionary=True)["url"]
    connection = create_engine(url).connect()

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
