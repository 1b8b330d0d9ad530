package spine_test

// The import rules of Spine's packages are written once, in each package's
// doc comment, in a form this test reads:
//
//	Imports: never internal/store, internal/certs.
//	Imports: only the standard library, github.com/miekg/dns, internal/dnstxt.
//	Imported by: tests only.
//	Imported by: only cmd/spine, tests.
//
// A name is a package of this module (internal/store, client), else an
// import path (net/http, golang.org/x/net/idna), and it covers the packages
// under it too; a name that is no package fails the test. "never" and
// "only" apply to what a package's non-test files import, directly or
// through other packages of this module. "Imported by: tests only" means
// that only _test.go files and other tests-only packages import it, and
// "Imported by: only A, tests" that A may too. Every package under
// internal/ and client/ states at least one rule, and the module-wide rules
// below hold on top of what the docs state.
//
// The test reads imports with go/parser (ImportsOnly, the build context's
// file selection), without the go command or the network.

import (
	"bufio"
	"fmt"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// moduleRules hold for every package under a prefix, whatever its doc says.
var moduleRules = []struct {
	under string // module-relative package prefix
	never []string
}{
	// cmd/ is wiring: the parts it wires never reach back into it.
	{under: "internal", never: []string{"cmd"}},
}

// mustState lists the module-relative prefixes whose packages must state an
// import rule in their doc comment.
var mustState = []string{"internal", "client"}

func TestImportRules(t *testing.T) {
	mod, err := loadModule(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(mod.pkgs) < 10 {
		t.Fatalf("found %d packages; is the test running at the module root?", len(mod.pkgs))
	}
	for _, problem := range mod.check() {
		t.Error(problem)
	}
}

// TestImportRulesCatchViolations runs the checker over a made-up module, so
// that a checker which stopped finding anything would fail here.
func TestImportRulesCatchViolations(t *testing.T) {
	m := &module{path: "example.com/m", requires: []string{"github.com/lib/x"}, pkgs: map[string]*pkg{}}
	add := func(rel, doc string, imports ...string) {
		m.pkgs[rel] = &pkg{rel: rel, doc: doc, imports: imports}
	}
	add("cmd/tool", "Command tool.", "example.com/m/internal/edge")
	add("internal/edge", "Package edge.\n\nImports: never internal/store.\n", "example.com/m/internal/util", "net/http")
	add("internal/util", "Package util.\n\nImports: only the standard library, internal/store.\n", "example.com/m/internal/store")
	add("internal/store", "Package store.\n\nImports: only the standard library.\n", "github.com/lib/x/sub", "example.com/m/cmd/tool")
	add("internal/testhelp", "Package testhelp.\n\nImported by: tests only.\n", "testing")
	add("internal/user", "Package user.\n\nImports: never github.com/lib/x, internal/nosuch.\n", "example.com/m/internal/testhelp", "github.com/lib/x")
	add("internal/web", "Package web.\n\nImports: never net/http,\ngithub.com/other/y.\n", "net/http/httputil")
	add("internal/quiet", "Package quiet has no rule.")
	add("internal/testhelp2", "Package testhelp2.\n\nImported by: tests only.\n", "example.com/m/internal/testhelp")
	add("internal/root", "Package root.\n\nImported by: only cmd/tool, tests.\n")
	add("internal/sneak", "Package sneak.\n\nImports: never cmd.\n", "example.com/m/internal/root")
	m.pkgs["cmd/tool"].imports = append(m.pkgs["cmd/tool"].imports, "example.com/m/internal/root")
	add("internal/garbled", "Package garbled.\n\nImports: sometimes internal/store.\n")
	add("client", "Package client.\n\nImports: only the standard library.\n", "example.com/m/internal/edge")
	got := strings.Join(m.check(), "\n")
	for _, want := range []string{
		"internal/edge imports internal/store (through internal/util), but its package doc says \"Imports: never internal/store.\"",
		"internal/store imports github.com/lib/x/sub, but its package doc says \"Imports: only the standard library.\"",
		"internal/util imports github.com/lib/x/sub (through internal/store), but its package doc says \"Imports: only the standard library, internal/store.\"",
		"internal/store imports cmd/tool, which no package under internal/ may import (moduleRules in imports_test.go)",
		"internal/user imports internal/testhelp, which is for tests only (its package doc says \"Imported by: tests only.\")",
		"internal/user imports github.com/lib/x, but its package doc says \"Imports: never github.com/lib/x, internal/nosuch.\"",
		"internal/user: its import rule names internal/nosuch, which is no package of this module or of the standard library",
		"internal/quiet: its package doc states no import rule",
		"internal/sneak imports internal/root, but that package's doc says \"Imported by: only cmd/tool, tests.\"",
		"internal/garbled: import rule \"Imports: sometimes internal/store.\": write \"Imports: never A, B.\" or \"Imports: only the standard library, A.\" or \"Imported by: tests only.\" or \"Imported by: only A, tests.\"",
		"internal/web imports net/http/httputil, but its package doc says \"Imports: never net/http, github.com/other/y.\"",
		"internal/web: its import rule names github.com/other/y, which is in no module that go.mod requires",
		"client imports internal/edge, but its package doc says \"Imports: only the standard library.\"",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the checker did not report\n\t%s\nIt reported:\n%s", want, got)
		}
	}
	for _, allowed := range []string{"internal/util imports internal/store,", "internal/edge imports net/http", "cmd/tool imports", "internal/testhelp imports", "internal/testhelp2 imports"} {
		if strings.Contains(got, allowed) {
			t.Errorf("the checker reported an allowed import (%s):\n%s", allowed, got)
		}
	}
}

type module struct {
	path     string   // module path
	requires []string // module paths from go.mod
	pkgs     map[string]*pkg
}

type pkg struct {
	rel     string   // module-relative path ("internal/edge"; "." at the root)
	doc     string   // package doc comment of its non-test files
	imports []string // of its non-test files, sorted
}

// loadModule reads every package of the module at root: its doc and the
// imports of its non-test files that the current build context selects.
func loadModule(root string) (*module, error) {
	m := &module{pkgs: map[string]*pkg{}}
	if err := m.readGoMod(filepath.Join(root, "go.mod")); err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		dir := filepath.Dir(path)
		if ok, err := build.Default.MatchFile(dir, name); err != nil || !ok {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, dir)
		rel = filepath.ToSlash(rel)
		p := m.pkgs[rel]
		if p == nil {
			p = &pkg{rel: rel}
			m.pkgs[rel] = p
		}
		if f.Doc != nil {
			p.doc += f.Doc.Text()
		}
		for _, spec := range f.Imports {
			ip := strings.Trim(spec.Path.Value, "\"`")
			if !slices.Contains(p.imports, ip) {
				p.imports = append(p.imports, ip)
			}
		}
		slices.Sort(p.imports)
		return nil
	})
	return m, err
}

// readGoMod reads the module path and the required module paths.
func (m *module) readGoMod(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	inRequire := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimSpace(strings.Split(sc.Text(), "//")[0]))
		switch {
		case len(fields) == 2 && fields[0] == "module":
			m.path = fields[1]
		case len(fields) >= 2 && fields[0] == "require" && fields[1] == "(":
			inRequire = true
		case len(fields) >= 3 && fields[0] == "require":
			m.requires = append(m.requires, fields[1])
		case inRequire && len(fields) == 1 && fields[0] == ")":
			inRequire = false
		case inRequire && len(fields) >= 2:
			m.requires = append(m.requires, fields[0])
		}
	}
	if m.path == "" {
		return fmt.Errorf("%s: no module line", name)
	}
	return sc.Err()
}

// rule is one package's stated rule.
type rule struct {
	text      string   // as written, for messages
	never     []string // import paths (module packages in full)
	only      []string // nil: no "only" rule
	stdlib    bool     // "only" allows the standard library
	byRule    bool     // an "Imported by" rule
	importers []string // of an "Imported by" rule: who may import it besides tests
}

var ruleLine = regexp.MustCompile(`(?ms)^(Imports|Imported by):\s(.*?)\.(\s|$)`)

// parseRules reads the rule lines of a package doc. Names are returned as
// written; resolve turns them into import paths.
func parseRules(doc string) ([]rule, []string) {
	var rules []rule
	var problems []string
	for _, m := range ruleLine.FindAllStringSubmatch(doc, -1) {
		text := m[1] + ": " + strings.Join(strings.Fields(m[2]), " ") + "."
		body := strings.Join(strings.Fields(m[2]), " ")
		var r rule
		r.text = text
		switch {
		case m[1] == "Imported by" && body == "tests only":
			r.byRule = true
		case m[1] == "Imported by" && strings.HasPrefix(body, "only ") && slices.Contains(splitList(strings.TrimPrefix(body, "only ")), "tests"):
			r.byRule = true
			for _, n := range splitList(strings.TrimPrefix(body, "only ")) {
				if n != "tests" {
					r.importers = append(r.importers, n)
				}
			}
		case m[1] == "Imports" && strings.HasPrefix(body, "never "):
			r.never = splitList(strings.TrimPrefix(body, "never "))
		case m[1] == "Imports" && strings.HasPrefix(body, "only "):
			r.only = []string{}
			for _, n := range splitList(strings.TrimPrefix(body, "only ")) {
				if n == "the standard library" {
					r.stdlib = true
				} else {
					r.only = append(r.only, n)
				}
			}
		default:
			problems = append(problems, fmt.Sprintf("import rule %q: write \"Imports: never A, B.\" or \"Imports: only the standard library, A.\" or \"Imported by: tests only.\" or \"Imported by: only A, tests.\"", text))
			continue
		}
		rules = append(rules, r)
	}
	return rules, problems
}

func splitList(s string) []string {
	var out []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// resolve turns a name of a rule into an import path, or says why it names
// nothing: a package of this module, of the standard library, or of a module
// that go.mod requires.
func (m *module) resolve(n string) (string, error) {
	for rel := range m.pkgs {
		if under(rel, n) {
			return m.path + "/" + n, nil
		}
	}
	if first, _, _ := strings.Cut(n, "/"); !strings.Contains(first, ".") {
		if fi, err := os.Stat(filepath.Join(build.Default.GOROOT, "src", filepath.FromSlash(n))); err == nil && fi.IsDir() {
			return n, nil
		}
		return "", fmt.Errorf("names %s, which is no package of this module or of the standard library", n)
	}
	for _, r := range m.requires {
		if under(n, r) {
			return n, nil
		}
	}
	return "", fmt.Errorf("names %s, which is in no module that go.mod requires", n)
}

// under reports whether path is prefix or below it.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// show writes an import path as the rules write it.
func (m *module) show(path string) string {
	if rel, ok := strings.CutPrefix(path, m.path+"/"); ok {
		return rel
	}
	return path
}

func (m *module) isStdlib(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".") && !under(path, m.path)
}

// deps returns what p imports, directly or through packages of this module,
// each with the chain of module packages it came through.
func (m *module) deps(p *pkg) map[string][]string {
	out := map[string][]string{}
	type item struct {
		p   *pkg
		via []string
	}
	queue := []item{{p, nil}}
	seen := map[string]bool{p.rel: true}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		for _, ip := range it.p.imports {
			if _, ok := out[ip]; !ok {
				out[ip] = it.via
			}
			rel, ok := strings.CutPrefix(ip, m.path+"/")
			if !ok || seen[rel] || m.pkgs[rel] == nil {
				continue
			}
			seen[rel] = true
			queue = append(queue, item{m.pkgs[rel], append(slices.Clip(it.via), rel)})
		}
	}
	return out
}

// check returns every broken rule, one sentence each.
func (m *module) check() []string {
	var problems []string
	rels := make([]string, 0, len(m.pkgs))
	for rel := range m.pkgs {
		rels = append(rels, rel)
	}
	slices.Sort(rels)
	importedBy := map[string]rule{} // import path -> its "Imported by" rule
	rules := map[string][]rule{}
	for _, rel := range rels {
		p := m.pkgs[rel]
		rs, bad := parseRules(p.doc)
		for _, b := range bad {
			problems = append(problems, rel+": "+b)
		}
		for i := range rs {
			for _, list := range []*[]string{&rs[i].never, &rs[i].only, &rs[i].importers} {
				for j, n := range *list {
					ip, err := m.resolve(n)
					if err != nil {
						problems = append(problems, fmt.Sprintf("%s: its import rule %v", rel, err))
					}
					(*list)[j] = ip
				}
			}
			if rs[i].byRule {
				importedBy[m.path+"/"+rel] = rs[i]
			}
		}
		rules[rel] = rs
		if len(rs) == 0 && len(bad) == 0 && slices.ContainsFunc(mustState, func(pre string) bool { return under(rel, pre) }) {
			problems = append(problems, rel+": its package doc states no import rule; add a line such as \"Imports: never internal/store.\" (see imports_test.go)")
		}
	}
	for _, rel := range rels {
		p := m.pkgs[rel]
		deps := m.deps(p)
		paths := make([]string, 0, len(deps))
		for ip := range deps {
			paths = append(paths, ip)
		}
		// Nearest first, so that a forbidden package is reported and not
		// everything it brings along.
		slices.SortFunc(paths, func(a, b string) int {
			if d := len(deps[a]) - len(deps[b]); d != 0 {
				return d
			}
			return strings.Compare(a, b)
		})
		through := func(ip string) string {
			if via := deps[ip]; len(via) > 0 {
				return " (through " + strings.Join(via, " → ") + ")"
			}
			return ""
		}
		for _, r := range rules[rel] {
			reported := map[string]bool{}
			for _, ip := range paths {
				if slices.ContainsFunc(deps[ip], func(via string) bool { return reported[m.path+"/"+via] }) {
					continue
				}
				never := slices.ContainsFunc(r.never, func(n string) bool { return n != "" && under(ip, n) })
				notOnly := r.only != nil && !(r.stdlib && m.isStdlib(ip)) && !slices.ContainsFunc(r.only, func(n string) bool { return n != "" && under(ip, n) })
				if never || notOnly {
					reported[ip] = true
					problems = append(problems, fmt.Sprintf("%s imports %s%s, but its package doc says %q", rel, m.show(ip), through(ip), r.text))
				}
			}
		}
		for _, mr := range moduleRules {
			if !under(rel, mr.under) {
				continue
			}
			for _, ip := range paths {
				for _, n := range mr.never {
					if under(ip, m.path+"/"+n) {
						problems = append(problems, fmt.Sprintf("%s imports %s%s, which no package under %s/ may import (moduleRules in imports_test.go)", rel, m.show(ip), through(ip), mr.under))
					}
				}
			}
		}
		if self, ok := importedBy[m.path+"/"+rel]; ok && len(self.importers) == 0 {
			continue // a tests-only package may build on another
		}
		for _, ip := range p.imports {
			by, ok := importedBy[ip]
			if !ok || slices.ContainsFunc(by.importers, func(n string) bool { return n != "" && under(m.path+"/"+rel, n) }) {
				continue
			}
			if len(by.importers) == 0 {
				problems = append(problems, fmt.Sprintf("%s imports %s, which is for tests only (its package doc says %q)", rel, m.show(ip), by.text))
			} else {
				problems = append(problems, fmt.Sprintf("%s imports %s, but that package's doc says %q", rel, m.show(ip), by.text))
			}
		}
	}
	return problems
}
