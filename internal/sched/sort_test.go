package sched

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// Sort sorts as slices.Sort does, at every length around its runs and
// merges (one run, a partial last run, an odd number of runs), with
// duplicates, sorted and reversed input.
func TestSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, sortRun - 1, sortRun, sortRun + 1, 2 * sortRun, 3*sortRun + 7, 5 * sortRun, 20_000} {
		inputs := map[string][]string{}
		random, dups := make([]string, n), make([]string, n)
		for i := range random {
			random[i] = fmt.Sprintf("s%08d.customers.test", r.IntN(1_000_000_000))
			dups[i] = fmt.Sprint(r.IntN(10))
		}
		inputs["random"], inputs["duplicates"] = random, dups
		inputs["sorted"] = slices.Sorted(slices.Values(random))
		inputs["reversed"] = slices.Clone(inputs["sorted"])
		slices.Reverse(inputs["reversed"])
		for what, in := range inputs {
			got, want := slices.Clone(in), slices.Clone(in)
			Sort(got, new(Yielder))
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%d %s strings: not sorted as slices.Sort sorts them", n, what)
			}
		}
	}
	ints := []int{5, 3, 9, 1}
	for range 3 * sortRun {
		ints = append(ints, r.IntN(100))
	}
	want := slices.Sorted(slices.Values(ints))
	Sort(ints, new(Yielder))
	if !slices.Equal(ints, want) {
		t.Error("ints: not sorted")
	}
}

// BenchmarkSort compares Sort with slices.Sort on a million hostnames.
func BenchmarkSort(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	in := make([]string, 1_000_000)
	for i := range in {
		in[i] = fmt.Sprintf("s%07d.customers.test", r.IntN(10_000_000))
	}
	for _, c := range []struct {
		name string
		sort func([]string)
	}{{"sched.Sort", func(s []string) { Sort(s, new(Yielder)) }}, {"slices.Sort", slices.Sort[[]string]}} {
		b.Run(c.name, func(b *testing.B) {
			s := make([]string, len(in))
			for b.Loop() {
				copy(s, in)
				c.sort(s)
			}
		})
	}
}
