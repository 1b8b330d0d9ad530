package dashboard

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/api"
)

// SignInPath returns a link path that signs a browser in as token, once,
// within ten minutes: "/ui/signin?code=...". The code stands for the
// token in this node's memory; the token itself is never in a URL.
func (d *Dashboard) SignInPath(token string) string {
	return Prefix + "signin?code=" + d.sessions.newCode(token)
}

// signinCookie carries the sign-in form's CSRF token before there is a
// session (double submit), so that another site cannot sign a browser in
// with a token of its own choosing.
const signinCookie = "spine_signin"

type signinData struct {
	CSRF, Next, Message string
	Form                *form
}

func (d *Dashboard) signinPage(w http.ResponseWriter, r *http.Request) {
	if c := r.URL.Query().Get("code"); c != "" {
		tok, ok := d.sessions.redeem(c)
		if !ok {
			d.renderSignin(w, r, http.StatusUnauthorized, "", &form{Errors: map[string]string{}, Message: "This sign-in link was used already or has expired (links last ten minutes, once). Sign in with a token, or run `spine up` again for a new link."})
			return
		}
		id, err := d.cfg.API.Identify(r.Context(), tok)
		if err != nil {
			d.renderSignin(w, r, http.StatusUnauthorized, "", &form{Errors: map[string]string{}, Message: errMessage(err)})
			return
		}
		d.startSession(w, r, tok, id, Prefix)
		return
	}
	d.renderSignin(w, r, http.StatusOK, r.URL.Query().Get("msg"), nil)
}

func (d *Dashboard) renderSignin(w http.ResponseWriter, r *http.Request, status int, msg string, f *form) {
	csrf := randomString()
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Value: csrf, Path: Prefix + "signin", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	if f == nil {
		f = &form{Values: map[string]string{}, Errors: map[string]string{}}
	}
	next := r.URL.Query().Get("next")
	if r.Method == http.MethodPost {
		next = r.PostFormValue("next")
	}
	d.render(w, r, nil, status, "signin", "Sign in", signinData{CSRF: csrf, Next: safeNext(next), Message: msg, Form: f})
}

func (d *Dashboard) signin(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(signinCookie)
	if err != nil || !sameSecret(r.PostFormValue("csrf"), c.Value) {
		d.renderSignin(w, r, http.StatusForbidden, "", &form{Errors: map[string]string{}, Message: "This form has expired or did not come from this dashboard; send it again."})
		return
	}
	tok := strings.TrimSpace(r.PostFormValue("token"))
	id, err := d.cfg.API.Identify(r.Context(), tok)
	if err != nil {
		status := http.StatusUnauthorized
		if ce, ok := err.(*client.Error); ok && ce.Status != 0 {
			status = ce.Status
		}
		d.renderSignin(w, r, status, "", &form{Values: map[string]string{}, Errors: map[string]string{"token": errMessage(err)}})
		return
	}
	d.startSession(w, r, tok, id, safeNext(r.PostFormValue("next")))
}

func (d *Dashboard) startSession(w http.ResponseWriter, r *http.Request, tok string, who api.Identity, next string) {
	id, _ := d.sessions.open(tok)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: Prefix, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: int(d.cfg.SessionTTL.Seconds())})
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Value: "", Path: Prefix + "signin", MaxAge: -1})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (d *Dashboard) signout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		if s, ok := d.sessions.get(c.Value); ok {
			if !sameSecret(r.PostFormValue("csrf"), s.csrf) {
				d.fail(w, r, nil, &client.Error{Status: http.StatusForbidden, Code: "csrf", Message: "this form has expired or did not come from this dashboard; reload the page and send it again"})
				return
			}
			d.sessions.close(c.Value)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, Prefix+"signin?msg="+url.QueryEscape("Signed out."), http.StatusSeeOther)
}

// safeNext is where to go after signing in: a dashboard path, never
// another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

func errMessage(err error) string {
	if ce, ok := err.(*client.Error); ok {
		return ce.Message
	}
	return "internal error"
}
