package certs

import (
	"testing"
	"time"
)

func TestACMEConfigManager(t *testing.T) {
	a := ACMEConfig{CAs: []string{"https://ca.example/dir"}, RenewCheckInterval: time.Minute, RenewalWindowRatio: 0.5,
		OrderBurst: 3, OrderInterval: 2 * time.Second}
	base := Config{CacheCapacity: 7}
	got := a.Manager(base, nil, nil)
	if got.CacheCapacity != 7 {
		t.Errorf("CacheCapacity = %d, want base's 7", got.CacheCapacity)
	}
	if len(got.Issuers) != 2 {
		t.Errorf("Issuers = %d, want the CA's and the internal one", len(got.Issuers))
	}
	if got.RenewCheckInterval != time.Minute || got.RenewalWindowRatio != 0.5 || got.ACMEOrderBurst != 3 || got.ACMEOrderInterval != 2*time.Second {
		t.Errorf("renewal and pace = %v %v %d %v, want a's", got.RenewCheckInterval, got.RenewalWindowRatio, got.ACMEOrderBurst, got.ACMEOrderInterval)
	}
	if got.DNS01Solver != nil {
		t.Error("a DNS-01 solver without DNS-01")
	}
}
