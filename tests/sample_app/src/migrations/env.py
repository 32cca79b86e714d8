"""Alembic environment: the database from DATABASE_URL, one transaction per migration."""

import os

from alembic import context
from sqlalchemy import create_engine


def run():
    url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg2://", 1)
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()


run()
