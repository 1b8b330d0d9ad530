package store

import (
	"strings"
	"testing"
)

func TestCheckQuota(t *testing.T) {
	for _, v := range []int{0, 1, MaxQuota} {
		if err := CheckQuota(v); err != nil {
			t.Errorf("CheckQuota(%d) = %v", v, err)
		}
	}
	for _, v := range []int{-1, MaxQuota + 1} {
		if err := CheckQuota(v); err == nil || !strings.Contains(err.Error(), "or 0 for no limit") {
			t.Errorf("CheckQuota(%d) = %v, want a refusal saying what to give", v, err)
		}
	}
	q := Quota{Domains: 1, Services: 2, Hostnames: 3, OrdersPerHour: 4}
	var got []string
	for _, f := range q.Fields() {
		got = append(got, f.Name+"="+string(rune('0'+f.Limit)))
	}
	if s := strings.Join(got, " "); s != "Domains=1 Services=2 Hostnames=3 OrdersPerHour=4" {
		t.Errorf("Fields() = %s", s)
	}
}
