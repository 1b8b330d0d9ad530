package ca

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"slices"
	"testing"
)

// Every signed certificate leaves one entry in the issuance log, under its serial.
func TestIssueRecordsEachCertificate(t *testing.T) {
	st := newStorage(t)
	c := mustLoad(t, st, Options{})
	ctx := context.Background()
	serials := map[string]bool{}
	for range 3 {
		ic, err := c.Issue(ctx, csrFor(t, &x509.CertificateRequest{DNSNames: []string{"a.example"}}))
		if err != nil {
			t.Fatal(err)
		}
		leaf := parseChain(t, ic.Certificate)[0]
		serials[leaf.SerialNumber.Text(16)] = true
	}
	keys, err := st.List(ctx, IssuedPrefix, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("issuance log has %d entries, want 3: %v", len(keys), keys)
	}
	for _, k := range keys {
		serial := k[len(IssuedPrefix)+1:]
		if !serials[serial] {
			t.Errorf("log entry %s is not the serial of an issued certificate", k)
		}
		b, err := st.Load(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		var rec IssuedRecord
		if err := json.Unmarshal(b, &rec); err != nil || !slices.Equal(rec.Names, []string{"a.example"}) || rec.NotAfter.IsZero() {
			t.Errorf("log entry %s = %s (%v), want the names and expiry", k, b, err)
		}
	}
}
