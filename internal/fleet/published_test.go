package fleet

import (
	"slices"
	"testing"
)

func TestPublished(t *testing.T) {
	p := &Published{}
	if _, ok := p.HTTPSRecord("a.example"); ok {
		t.Fatal("an HTTPS record before the edge serves anything")
	}
	if _, ok := p.Info(); ok {
		t.Fatal("ECH published while off")
	}
	p.Serves = func(name string) bool { return name == "a.example" }
	r, ok := p.HTTPSRecord("a.example")
	if !ok || !slices.Equal(r.ALPN, []string{"h2"}) || r.ECH != nil {
		t.Fatalf("HTTPSRecord(a.example) = %+v, %v; want h2, no ECH", r, ok)
	}
	if _, ok := p.HTTPSRecord("b.example"); ok {
		t.Fatal("an HTTPS record of a name the edge does not serve")
	}
	p.HTTP3 = true
	if r, _ := p.HTTPSRecord("a.example"); !slices.Equal(r.ALPN, []string{"h3", "h2"}) {
		t.Fatalf("ALPN with HTTP/3 = %v, want h3, h2", r.ALPN)
	}
}
