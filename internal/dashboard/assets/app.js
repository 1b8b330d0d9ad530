// Spine dashboard: live status through the event stream, copy buttons and
// confirmations. Loaded as a file (the Content-Security-Policy allows no
// inline script); works without it, pages are complete as served.
"use strict";

(function () {
  // Copy buttons: data-copy names the element whose text is copied.
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-copy]");
    if (!b) return;
    var el = document.getElementById(b.getAttribute("data-copy"));
    if (!el) return;
    var text = el.textContent;
    var done = function () { b.textContent = "Copied"; setTimeout(function () { b.textContent = "Copy"; }, 2000); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { select(el); });
    } else {
      select(el);
      b.textContent = "Selected: press Ctrl+C";
    }
  });
  function select(el) {
    var r = document.createRange();
    r.selectNodeContents(el);
    var s = window.getSelection();
    s.removeAllRanges();
    s.addRange(r);
  }

  // Confirmations before a destructive form is sent.
  document.addEventListener("submit", function (ev) {
    var b = ev.submitter || ev.target.querySelector("button[data-confirm]");
    if (b && b.hasAttribute("data-confirm") && !window.confirm(b.getAttribute("data-confirm"))) {
      ev.preventDefault();
    }
  });

  // Live status: the project's events move the badges of the hostnames on
  // the page (issuing → active) and add rows to the events page.
  var src = document.body.getAttribute("data-live");
  if (!src || !window.EventSource) return;
  var state = document.getElementById("live-state");
  var statusOf = {
    "certificate.issued": "active",
    "certificate.renewed": "active",
    "certificate.failed": "failed"
  };
  var es = new EventSource(src);
  es.onopen = function () { if (state) state.textContent = "Live: this page updates as things change."; };
  es.onerror = function () { if (state) state.textContent = "Live updates paused; reconnecting…"; };
  es.onmessage = function (m) { handle(m.data); };
  Object.keys(statusOf).concat(["service.created", "service.updated", "service.deleted", "domain.verified",
    "domain.verification_failed", "domain.moved", "certificate.expiring", "webhook.disabled"]).forEach(function (t) {
    es.addEventListener(t, function (m) { handle(m.data); });
  });
  function handle(data) {
    var e;
    try { e = JSON.parse(data); } catch (err) { return; }
    var st = statusOf[e.type];
    if (st) {
      document.querySelectorAll("[data-host]").forEach(function (b) {
        if (b.getAttribute("data-host") === e.subject) {
          var old = b.textContent;
          if (old !== st) {
            b.textContent = st;
            b.className = "badge " + st;
            var detail = b.nextElementSibling;
            if (st === "active" && detail && detail.classList.contains("detail")) detail.remove();
            count(old, -1);
            count(st, 1);
          }
        }
      });
    }
    var tbody = document.getElementById("events");
    if (tbody) {
      var tr = document.createElement("tr");
      [String(e.id), e.time.replace("T", " ").replace(/\..*Z$|Z$/, " UTC"), e.type, e.subject].forEach(function (v, i) {
        var td = document.createElement("td");
        if (i === 2) {
          var c = document.createElement("code");
          c.textContent = v;
          td.appendChild(c);
        } else {
          td.textContent = v;
        }
        tr.appendChild(td);
      });
      tbody.insertBefore(tr, tbody.firstChild);
    }
  }
  function count(status, delta) {
    var n = document.querySelector('[data-count="' + status + '"]');
    if (n) n.textContent = String(Math.max(0, parseInt(n.textContent, 10) + delta));
  }
})();
