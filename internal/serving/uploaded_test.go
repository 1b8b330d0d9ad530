package serving

import (
	"crypto/sha256"
	"testing"

	"github.com/spine-platform/spine/internal/store"
)

// TestWithUploaded: an upload, a removal, or a changed hostname, project
// or leaf changes the fingerprint; no uploads leave it as it was.
func TestWithUploaded(t *testing.T) {
	base := sha256.Sum256([]byte("services"))
	if WithUploaded(base, nil) != base {
		t.Fatal("no uploads changed the fingerprint")
	}
	up := store.UploadedCert{Hostname: "a.example", ProjectID: "p1", SHA256: "aa"}
	seen := map[[sha256.Size]byte]string{base: "none"}
	for name, ups := range map[string][]store.UploadedCert{
		"one":          {up},
		"hostname":     {{Hostname: "b.example", ProjectID: "p1", SHA256: "aa"}},
		"project":      {{Hostname: "a.example", ProjectID: "p2", SHA256: "aa"}},
		"leaf":         {{Hostname: "a.example", ProjectID: "p1", SHA256: "bb"}},
		"two":          {up, {Hostname: "b.example", ProjectID: "p1", SHA256: "aa"}},
		"split fields": {{Hostname: "a.examplep", ProjectID: "1", SHA256: "aa"}},
	} {
		sum := WithUploaded(base, ups)
		if other, dup := seen[sum]; dup {
			t.Errorf("uploads %q and %q have the same fingerprint", name, other)
		}
		seen[sum] = name
	}
}

// Owners indexes only the hostnames asked for, and none without any.
func TestOwnersOfWanted(t *testing.T) {
	routes := Routes([]store.Service{
		{ProjectID: "p", Name: "a", Hostnames: []string{"a.test", "c.test"}},
		{ProjectID: "q", Name: "b", Hostnames: []string{"b.test"}},
	}, nil)
	if got := routes.Owners(map[string]bool{"b.test": true, "gone.test": true}); len(got) != 1 || got["b.test"] != "q" {
		t.Errorf("Owners of b.test and gone.test = %v, want b.test: q", got)
	}
	if got := routes.Owners(nil); len(got) != 0 {
		t.Errorf("Owners of nothing = %v", got)
	}
}
