#!/bin/sh
# One-shot (compose service temporal-schema, image temporalio/admin-tools): create or upgrade the
# Temporal databases in PostgreSQL. Safe on every start: an existing database is kept, and
# update-schema applies only the versions it lacks (a Temporal upgrade = new image tags + this).
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
SCHEMA=/etc/temporal/schema/postgresql/v12
tool() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p 5432 -u "$POSTGRES_USER" --db "$@"; }
for db in temporal temporal_visibility; do
  dir=temporal; [ "$db" = temporal_visibility ] && dir=visibility
  # on a second start these two report that what they make exists; update-schema then decides
  tool "$db" create || echo "database $db: kept"
  tool "$db" setup-schema -v 0.0 || echo "schema of $db: kept"
  tool "$db" update-schema -d "$SCHEMA/$dir/versioned"
done
echo 'Temporal schema ready'
