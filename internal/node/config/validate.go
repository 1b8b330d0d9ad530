package config

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spine-platform/spine/internal/accesslog"
	"github.com/spine-platform/spine/internal/ca"
	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/metrics"
	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/syncer"
)

// FieldError is a field of Config that Validate refuses, or that node.Start
// could not use (a listen address another server holds, an access log file
// that cannot be opened).
type FieldError struct {
	// Field is the field's path in Config, e.g. "LeafLifetime", "ACME.CAs".
	Field string
	// Value is the refused value as it may be shown (quoted where it is
	// text), or "" if it is not shown: it may hold a secret.
	Value string
	// Err says what is wrong and what to give instead.
	Err error
}

// Error starts with "node: ", not "config: ": the words the operator has
// always seen, from the package they call (node.Start).
func (e *FieldError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("node: Config.%s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("node: Config.%s %s: %v", e.Field, e.Value, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// Validate reports the first field of c that node.Start would refuse, as
// a *FieldError. A zero field stands for its default and is valid. It
// opens and writes nothing; for a SQLite Store it checks that the file's
// folder exists or can be created. Start calls it; call it first to refuse
// a configuration before doing anything else.
func (c Config) Validate() error {
	var se *edge.SettingsError
	if err := c.Settings.Validate(); errors.As(err, &se) {
		return &FieldError{Field: se.Field, Value: se.Value, Err: se.Err}
	}
	for _, a := range []struct{ field, addr string }{{"APIAddr", c.APIAddr}, {"ACME.DNSAddr", c.ACME.DNSAddr}} {
		if err := hostname.CheckListenAddr(a.addr); a.addr != "" && err != nil {
			return &FieldError{Field: a.field, Value: strconv.Quote(a.addr), Err: err}
		}
	}
	if c.MetricsMaxSeries < 0 {
		return &FieldError{Field: "MetricsMaxSeries", Value: strconv.Itoa(c.MetricsMaxSeries), Err: errors.New("must be 0 (the default, 10000) or more")}
	}
	if err := metrics.CheckWhere(c.Metrics); c.Metrics != "" && err != nil {
		return &FieldError{Field: "Metrics", Value: strconv.Quote(c.Metrics), Err: err}
	}
	if c.Store != "" {
		if err := store.CheckDSN(c.Store); err != nil {
			return &FieldError{Field: "Store", Value: store.ShownDSN(c.Store), Err: err}
		}
	}
	if c.Domain != "" {
		if _, err := hostname.Normalize(c.Domain); err != nil {
			return &FieldError{Field: "Domain", Err: fmt.Errorf("%w; give the domain this node serves, e.g. example.com", err)}
		}
	}
	if err := ca.CheckLeafLifetime(c.LeafLifetime); err != nil {
		return &FieldError{Field: "LeafLifetime", Value: c.LeafLifetime.String(), Err: err}
	}
	if err := c.Webhooks.Validate(); err != nil {
		return &FieldError{Field: "Webhooks.AttemptTimeout", Value: c.Webhooks.AttemptTimeout.String(), Err: err}
	}
	for _, q := range c.Quota.Fields() {
		if err := store.CheckQuota(q.Limit); err != nil {
			return &FieldError{Field: "Quota." + q.Name, Value: strconv.Itoa(q.Limit), Err: err}
		}
	}
	if err := accesslog.CheckFormat(c.AccessLogFormat); err != nil {
		return &FieldError{Field: "AccessLogFormat", Value: strconv.Quote(string(c.AccessLogFormat)), Err: err}
	}
	if err := certs.CheckCacheCapacity(c.CertCacheSize); err != nil {
		return &FieldError{Field: "CertCacheSize", Value: strconv.Itoa(c.CertCacheSize), Err: err}
	}
	if err := syncer.CheckInterval(c.ResyncInterval); err != nil {
		return &FieldError{Field: "ResyncInterval", Value: c.ResyncInterval.String(), Err: err}
	}
	if err := c.ACME.Validate(); err != nil {
		var ae *certs.ACMEConfigError
		if errors.As(err, &ae) {
			return &FieldError{Field: "ACME." + ae.Field, Value: ae.Value, Err: ae.Err}
		}
		return err
	}
	return nil
}
