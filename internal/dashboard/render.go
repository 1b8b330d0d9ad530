package dashboard

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spine-platform/spine/internal/api"
)

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"signin", "error", "overview", "services", "service", "hostnames", "hostname", "domains", "events", "tokens", "webhooks", "operator"}

func (d *Dashboard) parse() error {
	funcs := template.FuncMap{
		"fmtTime": fmtTime,
		"timeOf": func(t *time.Time) string {
			if t == nil {
				return "—"
			}
			return fmtTime(*t)
		},
		"daysLeft": func(now time.Time, t *time.Time) string {
			if t == nil {
				return "—"
			}
			return daysLeft(now, *t)
		},
		"soon": func(now time.Time, t *time.Time) bool { return t != nil && t.Sub(now) < expiringWithin },
		"path": url.PathEscape,
		"join": strings.Join,
		"add":  func(a, b int) int { return a + b },
		"list": func(s ...string) []string { return s },
		"fieldOf": func(f *form, name, label, typ, help string) field {
			return field{Name: name, Label: label, Type: typ, Help: help, Value: f.Values[name], Error: f.Errors[name]}
		},
	}
	d.pages = map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+name+".html")
		if err != nil {
			return fmt.Errorf("dashboard: parsing template %s: %w", name, err)
		}
		d.pages[name] = t
	}
	return nil
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func daysLeft(now, t time.Time) string {
	d := t.Sub(now)
	switch {
	case d < 0:
		return "expired"
	case d < 48*time.Hour:
		return fmt.Sprintf("%.0f hours left", math.Ceil(d.Hours()))
	}
	return fmt.Sprintf("%d days left", int(d.Hours()/24))
}

// field is one input of a form, as the "field" template shows it.
type field struct{ Name, Label, Type, Help, Value, Error string }

// view is what every page's template gets.
type view struct {
	Title    string
	Page     string
	SignedIn bool
	ID       api.Identity
	CSRF     string
	Flash    string
	Live     string // the event stream this page follows
	Data     any
}

// Can reports whether the signed-in token has scope: what a page offers.
func (v view) Can(scope string) bool { return v.ID.Has(scope) }

func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, rq *request, status int, page, title string, data any) error {
	v := view{Title: title, Page: page, Data: data}
	if rq != nil {
		v.SignedIn, v.ID, v.CSRF, v.Flash = true, rq.id, rq.csrf(), rq.flash
		v.Live = Prefix + "events/stream"
		if rq.liveAfter > 0 {
			v.Live += fmt.Sprintf("?after=%d", rq.liveAfter)
		}
	}
	var buf bytes.Buffer
	if err := d.pages[page].Execute(&buf, v); err != nil {
		d.log.Error("rendering a page", "page", page, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return nil
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}
