package store

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// dsnWant says what a data source name looks like.
const dsnWant = "write sqlite:PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"

// CheckDSN checks, without opening anything, that Open can take dsn:
// "sqlite:PATH" whose folder exists or can be created, or a PostgreSQL
// URL that pgx accepts (a socket folder in ?host=, several hosts, no host
// for localhost). Its error says what to write instead, and never holds
// dsn or any part of it that may be a password; ShownDSN is what of dsn
// may be shown next to it.
func CheckDSN(dsn string) error {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" || strings.ContainsAny(path, "?#") {
			return errors.New("give the path of the database file after sqlite: (without '?' or '#'), e.g. sqlite:/var/lib/spine/spine.db")
		}
		// The nearest folder that exists must be a folder, or the store's
		// folder cannot be created.
		for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
			fi, err := os.Stat(dir)
			if err == nil {
				if !fi.IsDir() {
					return fmt.Errorf("%s is not a folder; give a path whose folder exists or can be created", dir)
				}
				return nil
			}
			if !errors.Is(err, fs.ErrNotExist) || dir == filepath.Dir(dir) {
				return fmt.Errorf("%w; give a path whose folder exists or can be created", err)
			}
		}
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		// pgx's errors hide the password.
		if _, err := pgconn.ParseConfig(dsn); err != nil {
			return fmt.Errorf("not a PostgreSQL URL (%v); %s", err, dsnWant)
		}
		return nil
	default:
		return errors.New("unknown kind of store (the value is not shown: it may hold a password); " + dsnWant)
	}
}

// ShownDSN is dsn as it may appear in a message, quoted: a SQLite path
// whole; a URL without its password and query (which may carry one, as
// ?password=); "" for anything else, which is not shown at all.
func ShownDSN(dsn string) string {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return strconv.Quote(dsn)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return ShownURL(dsn)
	}
	return ""
}

// ShownURL is raw as it may appear in a message, quoted: no password, no
// query, or a note if it is no URL at all.
func ShownURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(value not shown: not a URL)"
	}
	u.RawQuery, u.ForceQuery = "", false
	return strconv.Quote(u.Redacted())
}
