package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"iter"
	"strings"
	"testing"

	"github.com/spine-platform/spine/client"
)

// pages yields the given pages, then err if not nil.
func pages(err error, pp ...[]client.Service) iter.Seq2[[]client.Service, error] {
	return func(yield func([]client.Service, error) bool) {
		for _, p := range pp {
			if !yield(p, nil) {
				return
			}
		}
		if err != nil {
			yield(nil, err)
		}
	}
}

// TestPrintServices: the list printed a page at a time is the list printed
// whole (JSON byte for byte), an empty project prints an empty list, and a
// page that fails leaves what was printed and returns its error.
func TestPrintServices(t *testing.T) {
	a := client.Service{Name: "a", Hostnames: []string{"a.example.test"}, Upstreams: []string{"http://127.0.0.1:1"}}
	b := client.Service{Name: "bb<&>", Hostnames: []string{"bb.example.test", "x.example.test"}, Upstreams: []string{"http://127.0.0.1:2"}}
	c := client.Service{Name: "c", Hostnames: []string{"c.example.test"}, Upstreams: []string{"http://127.0.0.1:3"}}
	all := []client.Service{a, b, c}

	var whole bytes.Buffer
	enc := json.NewEncoder(&whole)
	enc.SetIndent("", "  ")
	enc.Encode(all)
	g := &globals{output: "json"}
	for _, pp := range [][][]client.Service{{all}, {{a}, {b}, {c}}, {{a, b}, {}, {c}}, {{}, {a}, {b, c}}} {
		var out bytes.Buffer
		if err := g.printServices(&out, pages(nil, pp...)); err != nil || out.String() != whole.String() {
			t.Fatalf("json by pages %v: %v\n%s\nwant\n%s", pp, err, out.String(), whole.String())
		}
	}
	var out bytes.Buffer
	if err := g.printServices(&out, pages(nil, []client.Service{})); err != nil || out.String() != "[]\n" {
		t.Fatalf("json of none: %v %q", err, out.String())
	}

	g.output = "text"
	for _, pp := range [][][]client.Service{{all}, {{}, {a}, {b, c}}} {
		out.Reset()
		if err := g.printServices(&out, pages(nil, pp...)); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[2], "bb<&>") || !strings.Contains(lines[2], "bb.example.test,x.example.test") {
			t.Fatalf("text by pages %v:\n%s", pp, out.String())
		}
	}
	out.Reset()
	if err := g.printServices(&out, pages(nil)); err != nil || out.String() != "NAME  HOSTNAMES  UPSTREAMS\n" {
		t.Fatalf("text of none: %v %q", err, out.String())
	}

	boom := errors.New("page 2: the API did not answer")
	for _, output := range []string{"text", "json"} {
		g.output = output
		out.Reset()
		err := g.printServices(&out, pages(boom, []client.Service{a}))
		if !errors.Is(err, boom) || !strings.Contains(out.String(), "a.example.test") || strings.HasSuffix(out.String(), "]\n") {
			t.Fatalf("%s, a page failing: %v\n%s", output, err, out.String())
		}
	}
}
