// The supervisor's pages: stations (/), receipts (/receipts, /receipts/ID) and the
// print queue (/labels). Every value from the daemon goes into the DOM as text.
"use strict";

(function () {
  var el = rmad.el, text = rmad.text;
  var page = document.body.getAttribute("data-page");

  function fail(e) { text("error", e.message || String(e)); }
  function cell(v, cls) { return el("td", cls ? { class: cls } : null, v); }
  function receiptLink(id) { return el("a", { href: "/receipts/" + id }, String(id)); }

  // Live pages re-read their data after events, at most twice a second: no polling.
  function live(query, reload) {
    var timer = null;
    rmad.events(query, function () {
      if (!timer) timer = setTimeout(function () { timer = null; reload(); }, 500);
    }, function (up) {
      var l = document.getElementById("link");
      l.className = "link " + (up ? "up" : "down");
      l.textContent = up ? "live" : "reconnecting";
    }).start(null);
  }

  // ---- / : the stations ----
  function stations() {
    return rmad.get("/api/status").then(function (s) {
      var box = rmad.clear(document.getElementById("stations"));
      s.stations.forEach(function (st) {
        var c = el("div", { class: "card station-card", "data-station": st.name },
                   el("h2", null, el("a", { href: "/station/" + encodeURIComponent(st.name) },
                                     st.name)));
        var r = st.receipt;
        c.appendChild(el("p", null, r ? "Open: " : "Idle",
                         r ? receiptLink(r.id) : null,
                         r ? " " + (r.rma || "no RMA") + (r.serial ? ", serial " + r.serial : "")
                           : null));
        (st.scanners || []).forEach(function (sc) {
          c.appendChild(el("p", { class: sc.state === "unavailable" || sc.state === "absent"
                                           ? "state-bad" : "state-ok" },
                           "Scanner " + sc.spec + ": " + sc.state + " (" + sc.detail + ")"));
        });
        if (st.printer) {
          var ps = st.printer_state || {};
          c.appendChild(el("p", { class: ps.state === "ready" ? "state-ok" : "state-bad" },
                           "Printer " + st.printer + ": " + (ps.state || "unknown") +
                           (ps.message ? " (" + ps.message + ")" : "")));
        }
        c.appendChild(el("p", null, st.scans + " scans, " + st.rejected + " rejected"));
        box.appendChild(c);
      });
      text("waiting", s.labels.queued + " queued, " + s.labels.submitted + " at the printer");
    }).catch(fail);
  }

  // ---- /receipts ----
  function receipts() {
    var q = new URLSearchParams(location.search);
    var form = document.getElementById("search");
    q.forEach(function (v, k) { if (form.elements[k]) form.elements[k].value = v; });
    var pageNo = parseInt(q.get("page") || "1", 10);
    return rmad.get("/api/receipts?" + q.toString()).then(function (res) {
      var tb = rmad.clear(document.querySelector("#receipts tbody"));
      res.receipts.forEach(function (r) {
        tb.appendChild(el("tr", null, el("td", null, receiptLink(r.id)), cell(r.station),
                          cell(r.rma, "mono"), cell(r.serial, "mono"), cell(r.state),
                          cell(rmad.words(r.disposition)), cell(rmad.when(r.opened)),
                          cell(r.reason)));
      });
      text("count", res.total + " receipt" + (res.total === 1 ? "" : "s") +
           (res.total > res.per_page ? ", page " + res.page : ""));
      function link(id, n, show) {
        var a = document.getElementById(id);
        a.style.visibility = show ? "visible" : "hidden";
        var p = new URLSearchParams(q);
        p.set("page", n);
        a.href = "/receipts?" + p.toString();
      }
      link("prev", pageNo - 1, pageNo > 1);
      link("next", pageNo + 1, pageNo * res.per_page < res.total);
    }).catch(fail);
  }

  // ---- /receipts/ID ----
  function receipt() {
    var id = location.pathname.split("/")[2];
    return rmad.get("/api/receipts/" + id).then(function (d) {
      var r = d.receipt;
      text("title", "Receipt " + r.id + (r.rma ? " · " + r.rma : ""));
      var s = rmad.clear(document.getElementById("summary"));
      s.appendChild(el("h2", null, "Unit"));
      var rows = [["Station", r.station], ["State", r.state], ["RMA", r.rma],
                  ["Vendor", d.rma && d.rma.vendor], ["Model", d.rma && d.rma.model],
                  ["Serial", r.serial], ["Expected serial", d.rma && d.rma.expected_serial],
                  ["Opened", rmad.when(r.opened)], ["Closed", rmad.when(r.closed)],
                  ["Reason", r.reason]];
      var t = el("table");
      rows.forEach(function (x) { if (x[1]) t.appendChild(el("tr", null, el("th", null, x[0]),
                                                          cell(x[1], "mono"))); });
      s.appendChild(t);

      var dec = document.getElementById("decision");
      var res = d.result;
      if (res) {
        dec.appendChild(el("p", { id: "disposition" }, el("strong", null,
                           rmad.words(res.disposition).toUpperCase()),
                           res.restocking_fee_pct ? " (" + res.restocking_fee_pct + "% fee)" : ""));
        if (res.warranty)
          dec.appendChild(el("p", null, "Warranty: " + res.warranty.status +
                             (res.warranty.ends ? " until " + res.warranty.ends : "")));
        if (res.flags && res.flags.length)
          dec.appendChild(el("p", null, "Flags: " + res.flags.map(rmad.words).join(", ")));
        var ol = el("ol", { id: "trace" });
        (res.reasons || []).forEach(function (x) {
          ol.appendChild(el("li", null, el("span", { class: "mono" }, x.rule), ": ", x.text));
        });
        dec.appendChild(el("h3", null, "Rule trace"));
        dec.appendChild(ol);
        if (res.policy) dec.appendChild(el("p", null, "Policy: " +
                                           (res.policy.file || res.policy.vendor || "")));
      } else {
        dec.appendChild(el("p", null, r.state === "refused" ? "Refused: " + (r.reason || "")
                                                            : "No decision yet"));
      }

      var lab = document.getElementById("label");
      if (d.label_png) {
        lab.appendChild(el("img", { id: "label-img", class: "label-img", src: d.label_png,
                                    alt: "label of receipt " + r.id }));
        var b = el("button", { id: "reprint", type: "button" }, "Reprint");
        b.addEventListener("click", function () {
          rmad.post("/api/receipts/" + r.id + "/reprint").then(function (x) {
            text("error", "label " + x.label + " queued");
          }).catch(fail);
        });
        lab.appendChild(el("p", null, b));
      } else {
        lab.appendChild(el("p", null, "No label: the receipt is " + r.state));
      }
      (d.labels || []).forEach(function (l) {
        lab.appendChild(el("p", null, "Label " + l.label + " (" + l.why + ") on " + l.printer +
                           ": " + l.state + (l.error ? ", " + l.error : "")));
      });

      var tb = document.querySelector("#scans tbody");
      d.scans.forEach(function (sc) {
        tb.appendChild(el("tr", { class: "scan" }, cell(rmad.when(sc.at)), cell(sc.scanner),
                          cell(sc.kind), cell(sc.text, "mono scan-text"), cell(sc.raw, "mono"),
                          cell(sc.accepted ? "accepted" : "rejected",
                               sc.accepted ? "accepted" : "rejected"),
                          cell(sc.reason)));
      });
      text("checklist", d.checklist ? JSON.stringify(d.checklist, null, 2) : "");
      var eb = document.querySelector("#events tbody");
      d.events.forEach(function (e) {
        eb.appendChild(el("tr", null, cell(e.seq), cell(e.type),
                          el("td", null, el("pre", null, JSON.stringify(e)))));
      });
      document.body.setAttribute("data-loaded", "1");
    }).catch(fail);
  }

  // ---- /labels ----
  function labels() {
    var q = new URLSearchParams(location.search);
    var st = q.get("state") || "waiting";
    document.getElementById("filter").elements.state.value = st;
    return rmad.get("/api/labels?state=" + encodeURIComponent(st)).then(function (res) {
      var tb = rmad.clear(document.querySelector("#labels tbody"));
      res.labels.forEach(function (l) {
        var act = el("td");
        if (l.state === "queued") {
          var c = el("button", { type: "button", class: "cancel" }, "Cancel");
          c.addEventListener("click", function () {
            rmad.post("/api/labels/" + l.label + "/cancel").then(labels).catch(fail);
          });
          act.appendChild(c);
        }
        var p = el("button", { type: "button", class: "reprint" }, "Reprint");
        p.addEventListener("click", function () {
          rmad.post("/api/receipts/" + l.receipt + "/reprint").then(labels).catch(fail);
        });
        act.appendChild(p);
        tb.appendChild(el("tr", null, cell(l.label), el("td", null, receiptLink(l.receipt)),
                          cell(l.station), cell(l.printer), cell(l.why), cell(l.state),
                          cell(l.attempts), cell(l.error), cell(rmad.when(l.created)), act));
      });
    }).catch(fail);
  }

  if (page === "index") { stations(); live("", stations); }
  else if (page === "receipts") receipts();
  else if (page === "receipt") receipt();
  else if (page === "labels") { labels(); live("", labels); }
})();
