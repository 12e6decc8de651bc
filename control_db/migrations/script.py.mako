"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

from control_db.migrations.sql_revision import sql_steps
${imports if imports else ""}

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}

UPGRADE = r"""
"""

DOWNGRADE = r"""
"""

upgrade, downgrade = sql_steps(UPGRADE, DOWNGRADE)
