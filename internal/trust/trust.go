// Package trust puts a root certificate into the trust stores of this
// machine, and takes it out again, as mkcert and `caddy trust` do: the
// system store (a file in the folder the distribution takes extra roots
// from, then its update command) and the NSS databases browsers read on
// Linux (~/.pki/nssdb for Chromium and other NSS programs, and each Firefox
// profile), through NSS's certutil.
//
// It does what github.com/smallstep/truststore does (the library behind
// `caddy trust`, itself from mkcert), with what that library fixes at
// program start made per call: the home folder whose databases change,
// and the system store's folder and update command (a test uses folders
// of its own and leaves the machine's trust store alone; an operator can
// name another user's home). It also creates ~/.pki/nssdb when absent,
// as Chromium would on its first start, and runs no sudo.
//
// Imports: never internal, client, cmd.
package trust

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Config says which stores Install and Uninstall change. The zero value
// changes the detected system store and the current user's NSS databases.
type Config struct {
	// Home is the home folder whose NSS databases get the root:
	// Home/.pki/nssdb (created if absent) and every Firefox profile under
	// Home/.mozilla/firefox and Home/snap/firefox/common/.mozilla/firefox.
	// Default: $HOME.
	Home string
	// SystemDir is the folder the system trust store takes extra roots
	// from, and SystemUpdate the command (and its arguments) that rebuilds
	// the system's bundle from it. Default: detected (DetectSystem).
	SystemDir    string
	SystemUpdate []string
	// NoSystem and NoNSS leave that kind of store alone.
	NoSystem, NoNSS bool
	// Certutil is NSS's certutil. Default: "certutil" on $PATH.
	Certutil string
	// Timeout bounds each command. Default 60s.
	Timeout time.Duration
}

// Result is what happened to one store.
type Result struct {
	Store   string // "system" or "nss"
	Path    string // the file (system) or the database (nss)
	Detail  string // which program reads it, or the update command
	Changed bool   // false: the root was already there (Install) or absent (Uninstall)
	Err     error
}

// System describes a distribution's system trust store.
type System struct {
	Dir    string   // folder of extra roots
	Ext    string   // the extension the update command picks up
	Update []string // command that rebuilds the bundle
}

// systems are the layouts mkcert and truststore know, in the order they
// look for them.
var systems = []System{
	{"/etc/pki/ca-trust/source/anchors", ".pem", []string{"update-ca-trust", "extract"}},       // Fedora, RHEL
	{"/usr/local/share/ca-certificates", ".crt", []string{"update-ca-certificates"}},           // Debian, Ubuntu, Alpine
	{"/usr/share/pki/trust/anchors", ".crt", []string{"update-ca-certificates"}},               // openSUSE
	{"/etc/ca-certificates/trust-source/anchors", ".crt", []string{"trust", "extract-compat"}}, // Arch
}

// DetectSystem returns this machine's system trust store, or false if it
// has none that this package knows.
func DetectSystem() (System, bool) {
	for _, s := range systems {
		if fi, err := os.Stat(s.Dir); err == nil && fi.IsDir() {
			return s, true
		}
	}
	return System{}, false
}

// ErrNotRoot is returned for a certificate that is not a self-signed CA.
var ErrNotRoot = errors.New("trust: not a root certificate")

// Name is how root is named in the stores: its common name and the start
// of its SHA-256 fingerprint, so that two Spine installations' roots are
// told apart.
func Name(root *x509.Certificate) string {
	sum := sha256.Sum256(root.Raw)
	cn := root.Subject.CommonName
	if cn == "" {
		cn = "root"
	}
	return cn + " " + hex.EncodeToString(sum[:8])
}

func fileName(root *x509.Certificate) string {
	sum := sha256.Sum256(root.Raw)
	return "spine-root-" + hex.EncodeToString(sum[:8])
}

func checkRoot(root *x509.Certificate) error {
	if root == nil || !root.IsCA || root.CheckSignatureFrom(root) != nil {
		return ErrNotRoot
	}
	return nil
}

// Install adds root to the stores cfg names. It returns one Result per
// store; the error joins those of the stores that failed.
func Install(ctx context.Context, root *x509.Certificate, cfg Config) ([]Result, error) {
	return run(ctx, root, cfg, true)
}

// Uninstall removes root from the stores cfg names.
func Uninstall(ctx context.Context, root *x509.Certificate, cfg Config) ([]Result, error) {
	return run(ctx, root, cfg, false)
}

func run(ctx context.Context, root *x509.Certificate, cfg Config, install bool) ([]Result, error) {
	if err := checkRoot(root); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	var out []Result
	if !cfg.NoSystem {
		out = append(out, cfg.system(ctx, root, install))
	}
	if !cfg.NoNSS {
		out = append(out, cfg.nss(ctx, root, install)...)
	}
	var errs []error
	for _, r := range out {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return out, errors.Join(errs...)
}

func (cfg Config) withDefaults() Config {
	if cfg.Home == "" {
		cfg.Home, _ = os.UserHomeDir()
	}
	if cfg.Certutil == "" {
		cfg.Certutil = "certutil"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	return cfg
}

// command runs name with args, bounded by the timeout, and returns an error
// that quotes its output.
func (cfg Config) command(ctx context.Context, stdin []byte, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("trust: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// system installs or removes root's file in the system store's folder and
// rebuilds the bundle.
func (cfg Config) system(ctx context.Context, root *x509.Certificate, install bool) Result {
	sys := System{Dir: cfg.SystemDir, Ext: ".crt", Update: cfg.SystemUpdate}
	if sys.Dir == "" {
		found, ok := DetectSystem()
		if !ok {
			return Result{Store: "system", Err: errors.New("trust: no system trust store known on this machine (looked for " + systemDirs() + "); pass --no-system, or name one with --system-dir and --system-update")}
		}
		sys = found
	}
	if len(sys.Update) == 0 {
		return Result{Store: "system", Path: sys.Dir, Err: errors.New("trust: no command given to rebuild the system trust store from " + sys.Dir)}
	}
	path := filepath.Join(sys.Dir, fileName(root)+sys.Ext)
	r := Result{Store: "system", Path: path, Detail: strings.Join(sys.Update, " ")}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})
	old, err := os.ReadFile(path)
	switch {
	case install && err == nil && bytes.Equal(old, pemBytes):
	case install:
		// A certificate is public: 0644, as the distribution's own.
		if err := os.WriteFile(path, pemBytes, 0o644); err != nil {
			r.Err = fmt.Errorf("trust: writing %s: %w (the system store needs root: run with sudo, or pass --no-system)", path, err)
			return r
		}
		r.Changed = true
	case errors.Is(err, os.ErrNotExist):
	default:
		if err := os.Remove(path); err != nil {
			r.Err = fmt.Errorf("trust: removing %s: %w (the system store needs root: run with sudo, or pass --no-system)", path, err)
			return r
		}
		r.Changed = true
	}
	if r.Changed {
		r.Err = cfg.command(ctx, nil, sys.Update[0], sys.Update[1:]...)
	}
	return r
}

func systemDirs() string {
	var dirs []string
	for _, s := range systems {
		dirs = append(dirs, s.Dir)
	}
	return strings.Join(dirs, ", ")
}

// nssDatabase is one NSS database and the program that reads it.
type nssDatabase struct {
	dir, program string
}

// databases returns the NSS databases under home: ~/.pki/nssdb (created
// when absent, as Chromium would) and every Firefox profile that has one.
func (cfg Config) databases(ctx context.Context, create bool) ([]nssDatabase, error) {
	shared := filepath.Join(cfg.Home, ".pki", "nssdb")
	var out []nssDatabase
	if _, err := os.Stat(filepath.Join(shared, "cert9.db")); err == nil {
		out = append(out, nssDatabase{shared, "Chromium and other NSS programs"})
	} else if create {
		if err := cfg.createDatabase(ctx, shared); err != nil {
			return nil, err
		}
		out = append(out, nssDatabase{shared, "Chromium and other NSS programs"})
	}
	for _, pattern := range []string{
		filepath.Join(cfg.Home, ".mozilla", "firefox", "*"),
		filepath.Join(cfg.Home, "snap", "firefox", "common", ".mozilla", "firefox", "*"),
	} {
		profiles, _ := filepath.Glob(pattern)
		for _, p := range profiles {
			if _, err := os.Stat(filepath.Join(p, "cert9.db")); err == nil {
				out = append(out, nssDatabase{p, "Firefox"})
			}
		}
	}
	return out, nil
}

// createDatabase makes an empty NSS database at dir, owned by the home
// folder's owner when run as root for another user.
func (cfg Config) createDatabase(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("trust: creating %s: %w", dir, err)
	}
	if err := cfg.command(ctx, nil, cfg.Certutil, "-N", "-d", "sql:"+dir, "--empty-password"); err != nil {
		return err
	}
	return chownLike(cfg.Home, filepath.Join(cfg.Home, ".pki"))
}

// nss installs or removes root in every NSS database of the home folder.
func (cfg Config) nss(ctx context.Context, root *x509.Certificate, install bool) []Result {
	if _, err := exec.LookPath(cfg.Certutil); err != nil {
		return []Result{{Store: "nss", Err: fmt.Errorf("trust: certutil is not installed (Debian: apt-get install libnss3-tools; Fedora: dnf install nss-tools), so browsers' NSS databases cannot be changed; install it, or pass --no-nss")}}
	}
	dbs, err := cfg.databases(ctx, install)
	if err != nil {
		return []Result{{Store: "nss", Err: err}}
	}
	name := Name(root)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})
	var out []Result
	for _, db := range dbs {
		r := Result{Store: "nss", Path: db.dir, Detail: db.program}
		has := cfg.command(ctx, nil, cfg.Certutil, "-L", "-d", "sql:"+db.dir, "-n", name) == nil
		switch {
		case install && !has:
			// Trusted to issue server certificates (C) only.
			r.Err = cfg.command(ctx, pemBytes, cfg.Certutil, "-A", "-d", "sql:"+db.dir, "-t", "C,,", "-n", name)
			r.Changed = r.Err == nil
		case !install && has:
			r.Err = cfg.command(ctx, nil, cfg.Certutil, "-D", "-d", "sql:"+db.dir, "-n", name)
			r.Changed = r.Err == nil
		}
		out = append(out, r)
	}
	return out
}

// Has reports whether root is in the NSS database at dir.
func (cfg Config) Has(ctx context.Context, root *x509.Certificate, dir string) bool {
	cfg = cfg.withDefaults()
	return cfg.command(ctx, nil, cfg.Certutil, "-L", "-d", "sql:"+dir, "-n", Name(root)) == nil
}
