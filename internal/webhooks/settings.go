package webhooks

import (
	"errors"
	"time"
)

// Settings are the operator's settings of the sender (config.Config.Webhooks,
// the --webhook-* flags of spine serve), copied into Config.
type Settings struct {
	// AllowPrivate: see Config.AllowPrivate. Default: refused.
	AllowPrivate bool
	// AttemptTimeout: see Config.AttemptTimeout; at most
	// MaxAttemptTimeout. Default 15 s.
	AttemptTimeout time.Duration
}

// MaxAttemptTimeout bounds Settings.AttemptTimeout (and so how long a dead
// sender holds a delivery: twice that).
const MaxAttemptTimeout = 5 * time.Minute

// Validate refuses an AttemptTimeout below zero or above
// MaxAttemptTimeout, saying what to give; zero is the default.
func (s Settings) Validate() error {
	if t := s.AttemptTimeout; t < 0 || t > MaxAttemptTimeout {
		return errors.New("give a duration from 1s to 5m, e.g. 15s")
	}
	return nil
}
