// Package migrations embeds the SQL migrations of every dialect. Files are
// <dialect>/<version>_<name>.sql, applied in version order by sqldb.Migrate.
package migrations

import "embed"

// FS holds postgres/*.sql and sqlite/*.sql.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
