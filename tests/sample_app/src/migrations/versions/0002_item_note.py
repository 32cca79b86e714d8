"""v2: an additive change (a nullable column), so v1 keeps working while the fleet rolls."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade():
    op.add_column("items", sa.Column("note", sa.Text, nullable=True))
    op.create_table("migration_runs", sa.Column("revision", sa.Text, nullable=False))
    op.execute("INSERT INTO migration_runs VALUES ('0002')")  # a second run would add a second row


def downgrade():
    op.drop_table("migration_runs")
    op.drop_column("items", "note")
