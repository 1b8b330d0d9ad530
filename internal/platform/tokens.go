package platform

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// Scopes: what a token may do. The project scopes act on the token's own
// project; a token given none of them has them all. ScopeOperator acts on
// every project (projects, the fleet's nodes, every project's audit
// trail); it is never implied: only the default project's admin tokens
// and the tokens an operator gives it to have it.
const (
	ScopeRead          = "read"           // every GET of the project's objects
	ScopeServicesWrite = "services:write" // create and delete services
	ScopeDomainsWrite  = "domains:write"  // add, verify and remove domains
	ScopeTokensWrite   = "tokens:write"   // create and revoke tokens
	ScopeWebhooksWrite = "webhooks:write" // add, remove, enable and test webhooks; redeliver
	// ScopeCertificatesWrite uploads and removes a project's own certificates.
	ScopeCertificatesWrite = "certificates:write"
	ScopeOperator          = "operator"
)

// ProjectScopes are the scopes a token without scopes has, in the order
// they are shown.
var projectScopes = []string{ScopeRead, ScopeServicesWrite, ScopeDomainsWrite, ScopeTokensWrite, ScopeWebhooksWrite, ScopeCertificatesWrite}

// ProjectScopes returns the scopes of a project's own objects.
func ProjectScopes() []string { return slices.Clone(projectScopes) }

// TokenPrefix starts every token Spine makes, so that secret scanners can
// find leaked ones. Tokens made before it was used are accepted as well.
const TokenPrefix = "spine_"

// Token limits.
const (
	MinTokenLifetime = 10 * time.Second
	MaxTokenLifetime = 3650 * 24 * time.Hour
	// lastUsedStep: a token's last use is written at most this often.
	lastUsedStep = time.Minute
)

// Caller is who makes an API request: a token and the project it belongs to.
type Caller struct {
	Project store.Project
	Token   store.Token
}

// EffectiveScopes returns what a token with the stored scopes may do: the
// project scopes it names (all of them if it names none) and the operator
// scope if it names it.
func EffectiveScopes(stored []string) []string {
	var out []string
	for _, s := range projectScopes {
		if slices.Contains(stored, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		out = slices.Clone(projectScopes)
	}
	if slices.Contains(stored, ScopeOperator) {
		out = append(out, ScopeOperator)
	}
	return out
}

// Has reports whether the caller's token has scope.
func (c Caller) Has(scope string) bool {
	return slices.Contains(EffectiveScopes(c.Token.Scopes), scope)
}

// Require returns nil if the caller may act with scope: its token has the
// scope, and a change is not asked of a suspended project. The error names
// the scope.
func (c Caller) Require(scope string) error {
	if !c.Has(scope) {
		return &Error{Kind: Forbidden, Code: "missing_scope", Message: fmt.Sprintf(
			"the token %q lacks the scope %q that this needs; use a token that has it (spine token create --scope %s)", c.Token.Name, scope, scope)}
	}
	if scope != ScopeRead && !c.Project.SuspendedAt.IsZero() {
		return &Error{Kind: Forbidden, Code: "project_suspended", Message: fmt.Sprintf(
			"project %q is suspended (since %s): nothing can be changed; ask the operator to resume it", c.Project.Name, c.Project.SuspendedAt.Format(time.RFC3339))}
	}
	return nil
}

// HashToken returns the form in which a token is stored: hex SHA-256. Tokens
// carry 256 bits of randomness, so a fast hash is enough (no password stretching).
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func newTokenValue() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// TokenSpec is what a caller asks for when it makes a token.
type TokenSpec struct {
	Name string
	// Scopes the token gets; none: the caller's own project scopes.
	Scopes []string
	// ExpiresIn is a lifetime ("30d", "12h"; see ParseLifetime); "" never expires.
	ExpiresIn string
}

// ParseLifetime reads a token lifetime: a Go duration ("90m", "12h") or a
// whole number of days ("30d"), from MinTokenLifetime to MaxTokenLifetime.
func ParseLifetime(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > int(MaxTokenLifetime/(24*time.Hour)) {
			return 0, invalid("invalid_expiry", fmt.Sprintf("lifetime %q: write a whole number of days (30d) or a duration (12h, 90m), at most %dd", s, MaxTokenLifetime/(24*time.Hour)))
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, invalid("invalid_expiry", fmt.Sprintf("lifetime %q: write a number of days (30d) or a duration (12h, 90m)", s))
		}
	}
	if d < MinTokenLifetime || d > MaxTokenLifetime {
		return 0, invalid("invalid_expiry", fmt.Sprintf("lifetime %q: give from %s to %dd", s, MinTokenLifetime, MaxTokenLifetime/(24*time.Hour)))
	}
	return d, nil
}

// checkScopes returns the scopes sorted and without duplicates, or an
// error naming the first unknown one.
func checkScopes(scopes []string) ([]string, error) {
	known := append(ProjectScopes(), ScopeOperator)
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		s = strings.TrimSpace(s)
		if !slices.Contains(known, s) {
			return nil, invalid("invalid_scope", fmt.Sprintf("scope %q is not one Spine knows; use %s", s, strings.Join(known, ", ")))
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// CreateToken makes a token in the caller's project and returns it with
// its value, shown this once (only its hash is kept). A token never gets
// more than its maker has: scopes the caller lacks, the operator scope
// from a caller without it, and a lifetime beyond the caller's own expiry
// are refused.
func (p *Platform) CreateToken(ctx context.Context, caller Caller, spec TokenSpec) (store.Token, string, error) {
	name := strings.TrimSpace(spec.Name)
	if err := checkName("token name", name); err != nil {
		return store.Token{}, "", err
	}
	scopes, err := checkScopes(spec.Scopes)
	if err != nil {
		return store.Token{}, "", err
	}
	if len(scopes) == 0 {
		// The caller's own project scopes; all of them stay "none".
		for _, s := range caller.Token.Scopes {
			if s != ScopeOperator {
				scopes = append(scopes, s)
			}
		}
	}
	for _, s := range EffectiveScopes(scopes) {
		if !caller.Has(s) {
			return store.Token{}, "", &Error{Kind: Forbidden, Code: "missing_scope", Message: fmt.Sprintf(
				"the token %q lacks the scope %q, so it cannot give it to a new token; ask for fewer scopes (--scope)", caller.Token.Name, s)}
		}
	}
	now := p.now().UTC()
	t := store.Token{ID: newID("tok_"), ProjectID: caller.Project.ID, Name: name, Scopes: scopes, CreatedAt: now}
	if spec.ExpiresIn != "" {
		d, err := ParseLifetime(spec.ExpiresIn)
		if err != nil {
			return store.Token{}, "", err
		}
		t.ExpiresAt = now.Add(d)
	}
	if exp := caller.Token.ExpiresAt; !exp.IsZero() && (t.ExpiresAt.IsZero() || t.ExpiresAt.After(exp)) {
		return store.Token{}, "", invalid("invalid_expiry", fmt.Sprintf(
			"the token %q expires at %s, and a token it makes cannot outlive it; give a lifetime of at most %s (--expires)",
			caller.Token.Name, exp.Format(time.RFC3339), exp.Sub(now).Truncate(time.Second)))
	}
	tok, err := p.insertToken(ctx, t)
	return t, tok, err
}

// insertToken stores t with a new value, and returns the value.
func (p *Platform) insertToken(ctx context.Context, t store.Token) (string, error) {
	tok := newTokenValue()
	t.Hash = HashToken(tok)
	if err := p.store.CreateToken(ctx, t); err != nil {
		return "", fromStore(err, fmt.Sprintf("token %q", t.Name))
	}
	return tok, nil
}

// ListTokens returns the tokens of the caller's project (never their values
// or hashes: the caller shows Name, Scopes and the times).
func (p *Platform) ListTokens(ctx context.Context, caller Caller) ([]store.Token, error) {
	ts, err := p.store.ListTokens(ctx, caller.Project.ID)
	return ts, fromStore(err, "tokens")
}

// RevokeToken deletes the caller's project's token of that name: from
// then on it gets 401 on every node (at once where the store answers;
// within the propagation time on a node answering from its last known
// state). A token with scopes the caller lacks cannot be revoked by it.
func (p *Platform) RevokeToken(ctx context.Context, caller Caller, name string) error {
	if err := checkName("token name", name); err != nil {
		return err
	}
	ts, err := p.store.ListTokens(ctx, caller.Project.ID)
	if err != nil {
		return fromStore(err, "tokens")
	}
	i := slices.IndexFunc(ts, func(t store.Token) bool { return t.Name == name })
	if i < 0 {
		return &Error{Kind: NotFound, Code: "not_found", Message: fmt.Sprintf("token %q does not exist in this project (spine token list)", name)}
	}
	for _, s := range EffectiveScopes(ts[i].Scopes) {
		if !caller.Has(s) {
			return &Error{Kind: Forbidden, Code: "missing_scope", Message: fmt.Sprintf(
				"token %q has the scope %q, which the token %q lacks; revoke it with a token that has it", name, s, caller.Token.Name)}
		}
	}
	return fromStore(p.store.DeleteToken(ctx, caller.Project.ID, name), fmt.Sprintf("token %q", name))
}

// Authenticate returns who a token is: its project and its scopes. An
// unknown, revoked or expired token is Unauthorized; expiry is checked
// against the stored time, so it holds where the store's answer is a
// remembered one.
func (p *Platform) Authenticate(ctx context.Context, token string) (Caller, error) {
	if token == "" {
		return Caller{}, &Error{Kind: Unauthorized, Code: "unauthorized", Message: "missing API token: send \"Authorization: Bearer <token>\" (the CLI reads SPINE_TOKEN or <data>/admin.token)"}
	}
	c, err := p.store.TokenByHash(ctx, HashToken(token))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Caller{}, &Error{Kind: Unauthorized, Code: "unauthorized", Message: "the API token is not valid (unknown or revoked): check SPINE_TOKEN or <data>/admin.token"}
		}
		return Caller{}, fromStore(err, "token")
	}
	now := p.now()
	if exp := c.Token.ExpiresAt; !exp.IsZero() && !now.Before(exp) {
		return Caller{}, &Error{Kind: Unauthorized, Code: "token_expired", Message: fmt.Sprintf(
			"the API token %q expired at %s; make a new one (spine token create)", c.Token.Name, exp.UTC().Format(time.RFC3339))}
	}
	p.usage.note(c.Token.ID, now)
	return Caller{Project: c.Project, Token: c.Token}, nil
}
