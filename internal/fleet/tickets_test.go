package fleet

import (
	"testing"
	"time"
)

// Keys rotate every TicketRotation; a replaced key stays for one more
// period (to decrypt the tickets it encrypted), then goes.
func TestTicketKeyRotation(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ring ticketKeyRing
	step := func(at time.Time, wantChanged bool, wantKeys int) {
		t.Helper()
		next, changed, err := ring.rotated(at)
		if err != nil {
			t.Fatal(err)
		}
		if changed != wantChanged || len(next.Keys) != wantKeys {
			t.Fatalf("at %v: changed %v with %d keys, want %v with %d", at.Sub(t0), changed, len(next.Keys), wantChanged, wantKeys)
		}
		if changed && !next.Keys[0].Created.Equal(at) {
			t.Fatalf("at %v: the newest key was made at %v", at.Sub(t0), next.Keys[0].Created.Sub(t0))
		}
		ring = next
	}
	step(t0, true, 1)                          // first key
	step(t0.Add(TicketRotation/2), false, 1)   // not due
	step(t0.Add(TicketRotation), true, 2)      // new key encrypts, the old one still decrypts
	step(t0.Add(TicketRotation*3/2), false, 2) // both still valid
	step(t0.Add(2*TicketRotation), true, 2)    // the first key's extra period is over
	if got := len(ring.keys()); got != 2 {
		t.Errorf("keys() = %d keys, want 2", got)
	}
	if ring.keys()[0] == ring.keys()[1] {
		t.Error("two rotations made the same key")
	}
}
