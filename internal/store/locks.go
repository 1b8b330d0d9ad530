package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// TryLock takes the lock name for owner until ttl from now (by the database's
// clock, which all nodes share). It succeeds if the lock is free, expired, or
// already owner's, whose lease it then extends; it reports false if another
// owner holds it. It does not wait.
func (db *DB) TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if name == "" || owner == "" || ttl <= 0 {
		return false, errors.New("store: TryLock needs a name, an owner and a positive ttl")
	}
	var ok bool
	err := db.write(ctx, "taking lock", false, func(tx *sql.Tx) error {
		// DO UPDATE ... WHERE changes no row, and so reports 0, when someone else holds a live lease.
		res, err := tx.ExecContext(ctx, `INSERT INTO locks (name, owner, expires) VALUES ($1, $2, `+db.d.now+` + $3)
			ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires = excluded.expires
			WHERE locks.owner = excluded.owner OR locks.expires <= `+db.d.now,
			name, owner, int64(ttl))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		ok = n > 0
		return err
	})
	return ok, err
}

// Unlock releases the lock name if owner holds it, even if its lease has
// expired. It returns ErrNotFound if owner does not hold it (it was never taken,
// or its lease expired and another owner took it).
func (db *DB) Unlock(ctx context.Context, name, owner string) error {
	return db.write(ctx, "releasing lock", false, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM locks WHERE name = $1 AND owner = $2`, name, owner)
		return mustAffect(res, err, func() error { return notFound("lock %q is not held by this owner", name) })
	})
}
