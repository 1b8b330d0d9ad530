package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
)

// Validate names the field it refuses, says what to give, shows no
// secret, and accepts the zero Config (every default).
func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("the zero Config: %v", err)
	}
	notAFolder := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notAFolder, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mod         func(*Config)
		field, hint string
	}{
		{func(c *Config) { c.HTTPSAddr = "nonsense" }, "HTTPSAddr", "HOST:PORT"},
		{func(c *Config) { c.APIAddr = "127.0.0.1:99999" }, "APIAddr", "port from 0 to 65535"},
		{func(c *Config) { c.ACME.DNSAddr = "53" }, "ACME.DNSAddr", "HOST:PORT"},
		{func(c *Config) { c.HTTPAddr = ":+80" }, "HTTPAddr", "port from 0 to 65535"},
		{func(c *Config) { c.Store = "mysql://root:SECRET@db/x" }, "Store", "write sqlite:PATH or postgres://"},
		{func(c *Config) { c.Store = "sqlite:" + filepath.Join(notAFolder, "spine.db") }, "Store", "is not a folder"},
		{func(c *Config) { c.Domain = "bad..name" }, "Domain", "give the domain this node serves"},
		{func(c *Config) { c.LeafLifetime = time.Minute }, "LeafLifetime", "from 1h to 8760h"},
		{func(c *Config) { c.CertCacheSize = -2 }, "CertCacheSize", "-1 for no bound"},
		{func(c *Config) { c.Webhooks.AttemptTimeout = time.Hour }, "Webhooks.AttemptTimeout", "1h0m0s: give a duration from 1s to 5m"},
		{func(c *Config) { c.Metrics = "nowhere" }, "Metrics", "write api (the API's listener), off, or HOST:PORT"},
		{func(c *Config) { c.ResyncInterval = -time.Second }, "ResyncInterval", "positive duration"},
		{func(c *Config) { c.ACME.CheckInterval = -time.Second }, "ACME.CheckInterval", "positive duration"},
		{func(c *Config) { c.ACME.RenewalWindowRatio = 1 }, "ACME.RenewalWindowRatio", "between 0 and 1"},
		{func(c *Config) { c.ACME.OrderBurst = -1 }, "ACME.OrderBurst", "at once"},
		{func(c *Config) { c.ACME.CAs = []string{"https://user:SECRET@ca.test/dir"} }, "ACME.CAs", "without credentials"},
		{func(c *Config) { c.ACME.CAs = []string{"http://ca.test/dir"} }, "ACME.CAs", "https://HOST"},
		{func(c *Config) { c.ACME.EAB = &acme.EAB{KeyID: "kid"} }, "ACME.EAB", "go together"},
		{func(c *Config) { c.ACME.EAB = &acme.EAB{KeyID: "kid", MACKey: "SECRET*"} }, "ACME.EAB.MACKey", "not base64url"},
		{func(c *Config) { c.ACME.DelegationZone = "bad..zone" }, "ACME.DelegationZone", "DNS zone"},
		{func(c *Config) { c.ACME.DNSProviders = map[string]certmagic.DNSProvider{"bad..zone": nil} }, "ACME.DNSProviders", "DNS zone"},
	} {
		var c Config
		tc.mod(&c)
		err := c.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("Validate() = %v, want field %s and %q", err, tc.field, tc.hint)
			continue
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("Validate() = %v: shows a secret", err)
		}
	}
}
