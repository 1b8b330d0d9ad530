package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseGCTrace(t *testing.T) {
	for _, tc := range []struct {
		line   string
		ms     float64
		forced bool
		ok     bool
	}{
		{"gc 1 @0.012s 1%: 0.012+1.2+0.003 ms clock, 0.024+0.1/0.5/0+0.006 ms cpu, 4->4->0 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 1 P", 1.2, false, true},
		{"gc 7 @1.512s 3%: 0.010+120+0.020 ms clock, 0.010+30/60/0+0.020 ms cpu, 900->950->340 MB, 1400 MB goal, 0 MB stacks, 0 MB globals, 1 P (forced)", 120, true, true},
		{`time=2026-12-06T09:00:00Z level=INFO msg="gc done" n=3`, 0, false, false},
		{"gc 3 @1s 2%: garbled ms clock, x", 0, false, false},
		{"", 0, false, false},
	} {
		ms, forced, ok := parseGCTrace(tc.line)
		if ms != tc.ms || forced != tc.forced || ok != tc.ok {
			t.Errorf("parseGCTrace(%q) = %v, %v, %v; want %v, %v, %v", tc.line, ms, forced, ok, tc.ms, tc.forced, tc.ok)
		}
	}
}

func TestWarmCollectionsStopsAtTheFirstSync(t *testing.T) {
	log := filepath.Join(t.TempDir(), "spine.log")
	text := "gc 1 @0.01s 0%: 0.01+2.5+0.01 ms clock, x ms cpu, 4->4->1 MB, 16 MB goal, 1 P\n" +
		"level=INFO msg=starting\n" +
		"gc 2 @1.5s 3%: 0.01+300+0.02 ms clock, x ms cpu, 1000->1100->400 MB, 1400 MB goal, 1 P (forced)\n" +
		`level=INFO msg="first sync applied" duration=14.2s` + "\n" +
		"gc 3 @20s 1%: 0.01+500+0.02 ms clock, x ms cpu, 500->500->300 MB, 600 MB goal, 1 P (forced)\n"
	if err := os.WriteFile(log, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	got := warmCollections(log)
	if got == nil || *got != (gcFigure{N: 2, Forced: 1, MarkMs: 302.5}) {
		t.Fatalf("warmCollections = %+v, want 2 collections, 1 forced, 302.5 ms", got)
	}
	if err := os.WriteFile(log, []byte("level=INFO msg=\"first sync applied\" duration=1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := warmCollections(log); got != nil {
		t.Fatalf("without a trace: %+v, want nil", got)
	}
}
