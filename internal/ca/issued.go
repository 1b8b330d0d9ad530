package ca

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math/big"
	"time"
)

// IssuedPrefix is the storage folder where the CA records every certificate
// it signs, one key per serial number (hex): the CA's issuance log, which a
// fleet shares. Counting its keys counts issuances, so a test (or an
// operator) can check that a fleet signed each certificate once.
const IssuedPrefix = "spine/ca/issued"

// IssuedRecord is the value stored under IssuedPrefix/<serial>. It holds no
// key material.
type IssuedRecord struct {
	Names    []string  `json:"names"`
	NotAfter time.Time `json:"not_after"`
	IssuedAt time.Time `json:"issued_at"`
}

// record writes the issuance log entry of a certificate before it is handed
// out: a certificate the log does not show is never issued, and when the
// storage is down no certificate is issued that could not be stored either.
func (c *CA) record(ctx context.Context, serial *big.Int, tmpl *x509.Certificate) error {
	names := append([]string(nil), tmpl.DNSNames...)
	for _, ip := range tmpl.IPAddresses {
		names = append(names, ip.String())
	}
	b, err := json.Marshal(IssuedRecord{Names: names, NotAfter: tmpl.NotAfter, IssuedAt: c.opts.Now().UTC()})
	if err != nil {
		return err
	}
	if err := c.st.Store(ctx, IssuedPrefix+"/"+serial.Text(16), b); err != nil {
		return fmt.Errorf("ca: recording issuance for %v: %w", names, err)
	}
	return nil
}
