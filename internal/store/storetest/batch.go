package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/secrets"
	"github.com/spine-platform/spine/internal/store"
)

// testCreateServices: a batch of services is stored whole, with its
// hostnames in order and one event each, in one revision; a batch that
// breaks a rule stores nothing and says why.
func testCreateServices(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	domain(t, db, "p1", "one.test")
	domain(t, db, "p2", "two.test")
	must(t, db.CreateService(ctx, service("p1", "old", "one.test", "old.one.test")))
	watch := db.Watch(ctx)
	drain(watch)
	rev, err := db.Revision(ctx)
	must(t, err)

	// More rows than one statement takes, so that the batch spans several.
	const n = 1300
	var batch []store.Service
	for i := range n {
		name := fmt.Sprintf("s%04d", i)
		batch = append(batch, service("p1", name, "one.test", name+".one.test", name+"-www.one.test"))
	}
	batch = append(batch, service("p2", "web", "two.test", "web.two.test"))
	must(t, db.CreateServices(ctx, batch))
	if r, err := db.Revision(ctx); err != nil || r != rev+1 {
		t.Errorf("revision after a batch = %d, %v; want %d (one bump)", r, err, rev+1)
	}
	waitSignal(t, watch, "after CreateServices")
	got, err := db.ListServices(ctx, "p1")
	must(t, err)
	if len(got) != n+1 {
		t.Fatalf("p1 has %d services, want %d", len(got), n+1)
	}
	s, err := db.GetService(ctx, "p1", "s1299")
	must(t, err)
	if !slices.Equal(s.Hostnames, []string{"s1299.one.test", "s1299-www.one.test"}) || s.HSTSMaxAge != 300 ||
		!slices.Equal(s.Upstreams, []string{"http://127.0.0.1:9000"}) || !s.CreatedAt.Equal(t0) {
		t.Errorf("GetService(s1299) = %+v", s)
	}
	if s, err := db.GetService(ctx, "p2", "web"); err != nil || !slices.Equal(s.Hostnames, []string{"web.two.test"}) {
		t.Errorf("GetService(p2/web) = %+v, %v", s, err)
	}
	es, err := db.ListEvents(ctx, "p1", 0, 2*n)
	must(t, err)
	if len(es) != n+1 || es[n].Type != store.EventServiceCreated || es[n].Subject != "s1299" || es[n].ID != es[0].ID+int64(n) {
		t.Errorf("p1 has %d events, the last %+v; want %d, the last service.created s1299", len(es), es[len(es)-1], n+1)
	}
	if got := types(eventsOf(t, db, "p2")); !slices.Equal(got, []string{"service.created web"}) {
		t.Errorf("p2 events = %v", got)
	}
	// IDs go on from the batch for a single append.
	e, _, err := db.AppendEvent(ctx, store.Event{ProjectID: "p1", Type: store.EventTokenCreated})
	must(t, err)
	if e.ID != es[n].ID+1 {
		t.Errorf("event after the batch has ID %d, want %d", e.ID, es[n].ID+1)
	}

	rev, err = db.Revision(ctx)
	must(t, err)
	fails := []struct {
		name   string
		batch  []store.Service
		target error
		text   string
	}{
		{"name taken", []store.Service{service("p1", "new1", "one.test", "new1.one.test"), service("p1", "old", "one.test", "x.one.test")}, store.ErrConflict, "already exists"},
		{"hostname taken", []store.Service{service("p1", "new1", "one.test", "new1.one.test"), service("p1", "new2", "one.test", "old.one.test")}, store.ErrConflict, "already taken"},
		{"hostname twice", []store.Service{service("p1", "new1", "one.test", "x.one.test"), service("p1", "new2", "one.test", "x.one.test")}, store.ErrConflict, "x.one.test"},
		{"name twice", []store.Service{service("p1", "new1", "one.test", "a.one.test"), service("p1", "new1", "one.test", "b.one.test")}, store.ErrConflict, "new1"},
		{"another project's domain", []store.Service{service("p1", "new1", "one.test", "new1.one.test"), service("p1", "new2", "two.test", "new2.two.test")}, store.ErrNotFound, "two.test"},
	}
	for _, f := range fails {
		wantErr(t, db.CreateServices(ctx, f.batch), f.target, f.text)
		if _, err := db.GetService(ctx, "p1", "new1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: the batch's first service was stored (%v)", f.name, err)
		}
	}
	must(t, db.SetQuotaOverride(ctx, "p2", store.QuotaOverride{Services: intp(3)}))
	err = db.CreateServices(ctx, []store.Service{service("p2", "a", "two.test", "a.two.test"), service("p2", "b", "two.test", "b.two.test"),
		service("p2", "c", "two.test", "c.two.test")})
	if !isQuota(err, "services", 3, 1) {
		t.Errorf("a batch past the quota: %v", err)
	}
	if r, err := db.Revision(ctx); err != nil || r != rev {
		t.Errorf("revision after refused batches = %d, %v; want %d", r, err, rev)
	}
	must(t, db.CreateServices(ctx, nil))
}

// testPutKeysAndCertStatus: keys and statuses written in one batch read
// back as written, secret keys sealed as PutKey seals them, existing ones
// replaced, and a key listed twice keeps its last value.
func testPutKeysAndCertStatus(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	raw := newRawKey()
	db.SetKeyring(keyring(t, raw))
	must(t, db.PutKey(ctx, "certificates/ca/h0000.test/h0000.test.crt", []byte("old")))
	must(t, db.PutCertStatus(ctx, store.CertStatus{Hostname: "h0000.test", Status: store.CertFailed, Error: "old"}))

	const n = 1200 // 3,600 keys: several statements
	var (
		kvs []store.KeyValue
		ss  []store.CertStatus
	)
	for i := range n {
		h := fmt.Sprintf("h%04d.test", i)
		dir := "certificates/ca/" + h + "/" + h
		kvs = append(kvs,
			store.KeyValue{Key: dir + ".crt", Value: []byte("cert " + h)},
			store.KeyValue{Key: dir + ".key", Value: []byte("key " + h)},
			store.KeyValue{Key: dir + ".json", Value: []byte(`{"sans":["` + h + `"]}`)})
		ss = append(ss, store.CertStatus{Hostname: h, Status: store.CertActive, Issuer: "Spine Internal CA",
			NotBefore: t0, NotAfter: t0.Add(24 * time.Hour), UpdatedAt: t0})
	}
	kvs = append(kvs, store.KeyValue{Key: "certificates/ca/h0001.test/h0001.test.crt", Value: []byte("last")})
	must(t, db.PutKeysAndCertStatus(ctx, kvs, ss))

	for _, c := range []struct{ key, want string }{
		{"certificates/ca/h0000.test/h0000.test.crt", "cert h0000.test"},
		{"certificates/ca/h0001.test/h0001.test.crt", "last"},
		{"certificates/ca/h1199.test/h1199.test.key", "key h1199.test"},
		{"certificates/ca/h1199.test/h1199.test.json", `{"sans":["h1199.test"]}`},
	} {
		if v, err := db.GetKey(ctx, c.key); err != nil || string(v) != c.want {
			t.Errorf("GetKey(%s) = %q, %v; want %q", c.key, v, err, c.want)
		}
	}
	counts, err := db.SealedKeys(ctx)
	must(t, err)
	if counts[secrets.KeyID(raw)] != n || counts[""] != 0 {
		t.Errorf("SealedKeys = %v, want %d sealed with the ring's key, none in the clear", counts, n)
	}
	db.SetKeyring(nil)
	if v, err := db.GetKey(ctx, "certificates/ca/h0005.test/h0005.test.key"); err == nil || bytes.Contains(v, []byte("key h0005")) {
		t.Errorf("GetKey of a sealed key without the ring = %q, %v; want an error", v, err)
	}
	all, err := db.ListCertStatus(ctx)
	must(t, err)
	if len(all) != n {
		t.Fatalf("ListCertStatus has %d, want %d", len(all), n)
	}
	if s := all[0]; s.Hostname != "h0000.test" || s.Status != store.CertActive || s.Error != "" || s.Issuer != "Spine Internal CA" ||
		!s.NotAfter.Equal(t0.Add(24*time.Hour)) || !s.UpdatedAt.Equal(t0) {
		t.Errorf("status of h0000.test = %+v, want the batch's", s)
	}
	must(t, db.PutKeysAndCertStatus(ctx, nil, nil))
	err = db.PutKeysAndCertStatus(ctx, []store.KeyValue{{Key: "ok", Value: []byte("v")}, {Key: "/bad", Value: []byte("v")}}, nil)
	if err == nil {
		t.Error("a batch with an invalid key was accepted")
	}
	if _, err := db.GetKey(ctx, "ok"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused batch's valid key was stored (%v)", err)
	}
}
