"""User names unique whatever their letter case: a unique index on lower(username).

Existing duplicates ("Admin" beside "admin", possible before this revision): the
oldest account (lowest id) keeps its name; each later one is renamed
``<name>~<id>`` (e.g. ``Admin~7``) and disabled, and an audit row
``user.rename_duplicate`` records old and new name. Nothing is deleted: an admin
can re-enable a renamed account (``greenwave users enable``) once its owner is
known, and its plan versions and audit rows keep the name they were written
under.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 16:45:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    users = sa.table(
        "users", sa.column("id", sa.Integer), sa.column("username", sa.String), sa.column("active", sa.Boolean)
    )
    audit = sa.table(
        "audit_log",
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("username", sa.String),
        sa.column("action", sa.String),
        sa.column("target", sa.String),
        sa.column("detail", sa.JSON),
    )
    seen: set[str] = set()
    for uid, name in conn.execute(sa.select(users.c.id, users.c.username).order_by(users.c.id)).all():
        key = name.lower()
        if key not in seen:
            seen.add(key)
            continue
        new = f"{name}~{uid}"[:64]
        conn.execute(users.update().where(users.c.id == uid).values(username=new, active=False))
        row = {"old": name, "new": new, "disabled": True}
        conn.execute(
            audit.insert().values(
                at=datetime.now(UTC), username="migration", action="user.rename_duplicate", target=new, detail=row
            )
        )
        seen.add(new.lower())
    op.create_index("ux_users_username_lower", "users", [sa.text("lower(username)")], unique=True)


def downgrade() -> None:
    op.drop_index("ux_users_username_lower", table_name="users")
