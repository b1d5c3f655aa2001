#!/bin/sh
# Create or upgrade the Temporal databases in PostgreSQL. Run by the compose service
# temporal-schema (image temporalio/admin-tools, where the defaults below hold) and by dev/stack.sh
# (the SQL tool and the schema files of the Go module it built, a throwaway cluster's port): one
# script, so what the tests set up is what ships. Safe on every start: an existing database is
# kept, and update-schema applies only the versions it lacks (a Temporal upgrade = new version +
# this).
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
SCHEMA=${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}
SQL_TOOL=${TEMPORAL_SQL_TOOL:-temporal-sql-tool}
tool() {
  "$SQL_TOOL" --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" -u "$POSTGRES_USER" --db "$@"
}
for db in temporal temporal_visibility; do
  dir=temporal; [ "$db" = temporal_visibility ] && dir=visibility
  # on a second start these two report that what they make exists; update-schema then decides
  tool "$db" create || echo "database $db: kept"
  tool "$db" setup-schema -v 0.0 || echo "schema of $db: kept"
  tool "$db" update-schema -d "$SCHEMA/$dir/versioned"
done
echo 'Temporal schema ready'
