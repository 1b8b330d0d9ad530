package storetest

import (
	"slices"
	"testing"

	"github.com/spine-platform/spine/internal/store"
)

// testChangeLog: ChangesSince tells a reader the services created,
// updated and deleted after the revision it applied, as they are stored
// now, and says Full when anything else changed or the log does not reach
// back.
func testChangeLog(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	must(t, db.CreateProject(ctx, store.Project{ID: "p1", Name: "one"}))
	must(t, db.CreateDomain(ctx, store.Domain{Name: "example.com", ProjectID: "p1", Status: store.DomainVerified}))
	rev, err := db.Revision(ctx)
	must(t, err)

	// since applies the changes after the reader's revision, checks what
	// they bring it to, and moves the reader there.
	since := func(what string, wantSvcs map[string][]string, wantDeleted []string) {
		t.Helper()
		ch, err := db.ChangesSince(ctx, rev)
		must(t, err)
		if ch.Full {
			t.Fatalf("%s: Full, want the services changed", what)
		}
		got := map[string][]string{}
		for _, s := range ch.Services {
			got[s.Name] = s.Hostnames
			if s.ID == "" || s.ProjectID != "p1" || len(s.Upstreams) == 0 {
				t.Errorf("%s: service %+v is not as stored", what, s)
			}
		}
		if len(got) != len(wantSvcs) {
			t.Errorf("%s: services %v, want %v", what, got, wantSvcs)
		}
		for name, hosts := range wantSvcs {
			if !slices.Equal(got[name], hosts) {
				t.Errorf("%s: service %s has hostnames %v, want %v", what, name, got[name], hosts)
			}
		}
		slices.Sort(ch.Deleted)
		slices.Sort(wantDeleted)
		if !slices.Equal(ch.Deleted, wantDeleted) {
			t.Errorf("%s: deleted %v, want %v", what, ch.Deleted, wantDeleted)
		}
		cur, err := db.Revision(ctx)
		must(t, err)
		if ch.Revision != cur {
			t.Errorf("%s: brings the reader to revision %d, the store is at %d", what, ch.Revision, cur)
		}
		rev = ch.Revision
	}
	full := func(what string, from int64) {
		t.Helper()
		ch, err := db.ChangesSince(ctx, from)
		must(t, err)
		if !ch.Full {
			t.Errorf("%s: not Full (%+v), want Full", what, ch)
		}
	}

	since("nothing changed", nil, nil)
	web, api := service("p1", "web", "example.com", "web.example.com"), service("p1", "api", "example.com", "api.example.com")
	web.ID, api.ID = "id-web", "id-api"
	must(t, db.CreateService(ctx, web))
	must(t, db.CreateService(ctx, api))
	since("two created", map[string][]string{"web": {"web.example.com"}, "api": {"api.example.com"}}, nil)
	since("nothing more", nil, nil)

	_, err = db.UpdateService(ctx, "p1", "web", func(s *store.Service) error { s.Hostnames = []string{"w.example.com"}; return nil })
	must(t, err)
	since("updated", map[string][]string{"web": {"w.example.com"}}, nil)

	must(t, db.DeleteService(ctx, "p1", "api"))
	since("deleted", nil, []string{"id-api"})

	tmp := service("p1", "tmp", "example.com", "tmp.example.com")
	tmp.ID = "id-tmp"
	must(t, db.CreateService(ctx, tmp))
	_, err = db.UpdateService(ctx, "p1", "web", func(s *store.Service) error { s.Hostnames = []string{"web.example.com"}; return nil })
	must(t, err)
	must(t, db.DeleteService(ctx, "p1", "tmp"))
	since("created, another updated, then deleted", map[string][]string{"web": {"web.example.com"}}, []string{"id-tmp"})

	// A failed write logs nothing.
	if err := db.DeleteService(ctx, "p1", "missing"); err == nil {
		t.Fatal("deleting a missing service succeeded")
	}
	since("after a failed delete", nil, nil)

	// Anything but a service: read everything.
	before := rev
	must(t, db.CreateToken(ctx, store.Token{ID: "t1", ProjectID: "p1", Name: "ci", Hash: "h1"}))
	full("a token created", before)
	must(t, db.CreateDomain(ctx, store.Domain{Name: "other.com", ProjectID: "p1"}))
	full("a domain created", before)
	cur, err := db.Revision(ctx)
	must(t, err)
	must(t, db.SuspendProject(ctx, "p1", t0))
	full("a project suspended", cur)
	full("a revision older than the log", 0)
	cur, err = db.Revision(ctx)
	must(t, err)
	full("a revision the store has not reached", cur+5)
	ch, err := db.ChangesSince(ctx, cur)
	must(t, err)
	if ch.Full || ch.Revision != cur || len(ch.Services)+len(ch.Deleted) != 0 {
		t.Errorf("at the store's revision: %+v, want nothing changed", ch)
	}
}
