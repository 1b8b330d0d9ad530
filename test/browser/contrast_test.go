package browser

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/chromedp/chromedp"
)

// WCAG 2.x contrast (success criteria 1.4.3 and 1.4.11): the ratio
// (L1 + 0.05) / (L2 + 0.05) of the relative luminances of a text's colour
// and the colour behind it is at least 4.5:1 for body text and 3:1 for
// large text (24 px, or 18.66 px bold) and for the boundary of a control
// (an input's border, a button's face) against what surrounds it.

// rgba is a computed CSS colour, channels 0-255, alpha 0-1.
type rgba struct{ R, G, B, A float64 }

// luminance is the relative luminance of c (WCAG 2.x, sRGB).
func luminance(c rgba) float64 {
	lin := func(v float64) float64 {
		v /= 255
		if v <= 0.04045 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c.R) + 0.7152*lin(c.G) + 0.0722*lin(c.B)
}

// over is c drawn over the opaque colour bg.
func over(c, bg rgba) rgba {
	if c.A >= 1 {
		return c
	}
	mix := func(a, b float64) float64 { return a*c.A + b*(1-c.A) }
	return rgba{mix(c.R, bg.R), mix(c.G, bg.G), mix(c.B, bg.B), 1}
}

// contrast is the WCAG contrast ratio of fg over the opaque bg, 1 to 21.
func contrast(fg, bg rgba) float64 {
	a, b := luminance(over(fg, bg)), luminance(bg)
	if a < b {
		a, b = b, a
	}
	return (a + 0.05) / (b + 0.05)
}

func TestContrastRatio(t *testing.T) {
	white, black := rgba{255, 255, 255, 1}, rgba{0, 0, 0, 1}
	for _, c := range []struct {
		fg, bg   rgba
		min, max float64
	}{
		{black, white, 21, 21},
		{white, white, 1, 1},
		{rgba{0x76, 0x76, 0x76, 1}, white, 4.54, 4.55}, // the lightest grey that passes on white
		{rgba{0x77, 0x77, 0x77, 1}, white, 4.47, 4.49}, // and the next, which does not
		{rgba{0, 0, 0, 0.5}, white, 3.9, 4.1},          // black at half opacity is grey #808080
	} {
		if got := contrast(c.fg, c.bg); got < c.min || got > c.max {
			t.Errorf("contrast(%v on %v) = %.3f, want %.2f-%.2f", c.fg, c.bg, got, c.min, c.max)
		}
		if got := contrast(c.bg, over(c.fg, c.bg)); c.fg.A == 1 && math.Abs(got-contrast(c.fg, c.bg)) > 1e-9 {
			t.Errorf("contrast is not symmetric for %v, %v", c.fg, c.bg)
		}
	}
}

// contrastSample is one element of a page as the browser renders it: the
// colour of its own text (or of its border and face, for a control) and
// the first opaque background behind it.
type contrastSample struct {
	What, Text string
	Control    bool
	FG, BG     rgba
	Face       rgba    // a control's background; FG is its border
	Size       float64 // font size, px
	Weight     int
}

// contrastJS collects every visible element with text of its own and
// every visible control of the page.
const contrastJS = `(() => {
  const parse = c => {
    const m = /rgba?\(([^)]+)\)/.exec(c);
    if (!m) return null;
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(parseFloat);
    return {R: p[0], G: p[1], B: p[2], A: p.length > 3 ? p[3] : 1};
  };
  const bgOf = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.A > 0) return c;
    }
    return {R: 255, G: 255, B: 255, A: 1};
  };
  const shown = el => {
    const st = getComputedStyle(el), r = el.getBoundingClientRect();
    return st.visibility !== 'hidden' && st.display !== 'none' && r.width > 1 && r.height > 1 &&
      r.right > 0 && r.bottom > 0 && parseFloat(st.opacity) > 0;
  };
  const what = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\s+/).join('.') : '');
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!shown(el)) continue;
    const st = getComputedStyle(el);
    const own = Array.from(el.childNodes).filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim();
    const isControl = /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(el.tagName);
    if (own || (isControl && !/^(hidden|checkbox|radio)$/.test(el.type))) {
      out.push({What: what(el), Text: own.slice(0, 40), Control: false, FG: parse(st.color), BG: bgOf(el),
        Size: parseFloat(st.fontSize), Weight: parseInt(st.fontWeight, 10)});
    }
    if (isControl && !/^(hidden|checkbox|radio)$/.test(el.type)) {
      // The control's boundary against what surrounds it: its border or
      // its face, whichever stands out more. (A checkbox or radio button
      // is drawn by the browser, not by the dashboard's CSS.)
      const none = {R: 0, G: 0, B: 0, A: 0};
      const border = parseFloat(st.borderTopWidth) > 0 ? (parse(st.borderTopColor) || none) : none;
      out.push({What: what(el) + ' (boundary)', Text: own.slice(0, 40), Control: true, FG: border,
        Face: parse(st.backgroundColor) || none, BG: bgOf(el.parentElement), Size: 0, Weight: 0});
    }
  }
  return out;
})()`

// checkContrast fails t for every text and control of the page open in
// ctx whose contrast is under WCAG's minimum (page names it).
func checkContrast(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	samples, err := chromedp.Run(ctx, chromedp.Evaluate[[]contrastSample](contrastJS))
	if err != nil {
		t.Fatalf("reading the colours of %s: %v", page, err)
	}
	if len(samples) == 0 {
		t.Fatalf("%s: no text found to check", page)
	}
	seen := map[string]bool{}
	for _, s := range samples {
		min := 4.5
		switch {
		case s.Control:
			min = 3
		case s.Size >= 24 || (s.Size >= 18.66 && s.Weight >= 700):
			min = 3
		}
		ratio := contrast(s.FG, s.BG)
		if s.Control {
			ratio = max(ratio, contrast(s.Face, s.BG))
		}
		key := fmt.Sprintf("%s %v %v", s.What, s.FG, s.BG)
		if ratio < min && !seen[key] {
			seen[key] = true
			t.Errorf("%s: %s %q: contrast %.2f:1 (colour %v on %v), want at least %.1f:1", page, s.What, s.Text, ratio, s.FG, s.BG, min)
		}
	}
}
