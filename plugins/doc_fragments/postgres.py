# Copyright: caretaker.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How every caretaker module reaches PostgreSQL (module_utils/lib/pg.py CONNECTION_SPEC).
    DOCUMENTATION = r"""
options:
  conninfo:
    description:
      - A libpq connection string or URI (C(host=/run/postgresql dbname=app sslmode=verify-full)),
        for anything the other options do not name.
      - An option below that is set wins over the same setting here; what neither sets comes from
        libpq's defaults and the C(PG*) environment variables.
    type: str
    default: ""
  database:
    description: The database to connect to; the user name (libpq's default) when neither this nor O(conninfo) names one.
    type: str
  pg_host:
    description: PostgreSQL host name, IP address or socket directory; the libpq default when unset.
    type: str
  pg_port:
    description: PostgreSQL port; the libpq default (5432) when unset.
    type: int
  pg_user:
    description: PostgreSQL role to connect as; the libpq default when unset.
    type: str
  pg_password:
    description: Password of O(pg_user). Prefer O(pg_passfile), a file readable by root only.
    type: str
  pg_passfile:
    description: A libpq password file (C(.pgpass) format).
    type: path
  connect_timeout:
    description: Seconds to wait for a PostgreSQL connection.
    type: int
    default: 10
"""
