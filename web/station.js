// The station screen: /station/NAME. What is open, what to scan next, and in big
// colour whether the last scan was taken. Live from the event stream; the open
// receipt is read again (GET /api/stations/NAME) after each event that changes it.
"use strict";

(function () {
  var el = rmad.el, text = rmad.text;
  var name = decodeURIComponent(location.pathname.replace(/^\/station\//, ""));
  var state = null;            // the last /api/stations/NAME answer
  var seen = [];               // every seq shown, in order (the tests read it)
  window.rmadStation = { seen: seen, outcome: null };
  var audio = null;

  // A short low double beep for a reject: the scanner's own beep says "read",
  // this one says "not taken". Web Audio needs no file and no inline script.
  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      [0, 0.18].forEach(function (t) {
        var o = audio.createOscillator(), g = audio.createGain();
        o.type = "square";
        o.frequency.value = 220;
        g.gain.value = 0.15;
        o.connect(g);
        g.connect(audio.destination);
        o.start(audio.currentTime + t);
        o.stop(audio.currentTime + t + 0.12);
      });
    } catch (e) { /* no sound device: the colour still says it */ }
  }

  // What to do next, when the event does not say it ("next" of issue 10).
  function nextStep() {
    if (state && state.receipt && state.receipt.next)
      return state.receipt.next;   // the station's own words (daemon/checklist.c)
    if (!state || !state.receipt)
      return "Scan the RMA number on the package (or CMD-NORMA without one)";
    var r = state.receipt;
    if (!r.serial)
      return "Scan the unit's serial number";
    var missing = (r.accessories || []).filter(function (a) { return !a.present; });
    if (missing.length)
      return "Scan the accessories in the box (" + missing.map(function (a) { return a.name; })
             .join(", ") + "), the checklist barcodes, then CMD-DONE";
    return "Scan the checklist barcodes that apply, then CMD-DONE";
  }

  function setOutcome(kind, word, scanned, reason, next) {
    var o = document.getElementById("outcome");
    o.className = "outcome " + kind;
    text("outcome-word", word);
    text("outcome-text", scanned);
    text("outcome-reason", reason);
    window.rmadStation.outcome = { kind: kind, word: word, text: scanned, reason: reason };
    if (next) text("next", next);
  }

  function outcomeOf(ev) {
    var msg = ev.message || null;
    switch (ev.type) {
    case "scan.rejected":
      return ["bad", "REJECTED", ev.text || "(unreadable)", msg || ev.reason];
    case "scan.accepted":
      return ["ok", "TAKEN", ev.text, msg || rmad.words(ev.kind)];
    case "receipt.refused":
      return ["warn", "RMA REFUSED", ev.rma, msg || ev.reason];
    case "receipt.opened":
      return ["ok", "RECEIPT OPEN", ev.rma || "no RMA",
              msg || [ev.vendor, ev.model].filter(Boolean).join(" ")];
    case "receipt.cancelled":
      return ["warn", "CANCELLED", ev.rma, msg || "receipt cancelled"];
    case "inspection.completed":
      var hold = ["quarantine", "manual_review", "refuse"].indexOf(ev.disposition) >= 0;
      var why = ev.reasons && ev.reasons.length ? ev.reasons[0].text : "";
      return [hold ? "warn" : "ok", rmad.words(ev.disposition).toUpperCase(), ev.rma, msg || why];
    }
    return null;
  }

  function renderReceipt() {
    var r = state && state.receipt;
    var tbody = rmad.clear(document.querySelector("#checklist tbody"));
    var acc = rmad.clear(document.getElementById("accessories"));
    if (!r) {
      text("receipt-title", "No receipt open");
      text("receipt-product", "");
      text("receipt-serial", "");
      return;
    }
    text("receipt-title", (r.rma || "No RMA") +
         (r.unit ? "  ·  unit " + r.unit.k + " of " + r.unit.n : "") + "  ·  receipt " + r.id);
    text("receipt-product", [r.vendor, r.model].filter(Boolean).join(" "));
    text("receipt-serial", r.serial ? "Serial " + r.serial : "Serial not scanned yet");
    (r.items || []).forEach(function (it) {
      tbody.appendChild(el("tr", { class: (it.done ? "done" : "todo") + (it.needed ? " needed" : ""),
                                   "data-item": it.item },
                           el("th", null, it.label), el("td", null, rmad.words(it.state))));
    });
    if ((r.accessories || []).length) {
      acc.appendChild(el("h3", null, "Accessories expected"));
      r.accessories.forEach(function (a) {
        acc.appendChild(el("div", { class: "acc " + (a.present ? "present" : "missing") +
                                           (a.needed ? " needed" : "") },
          el("div", { class: "acc-name" }, (a.present ? "\u2713 " : "") + a.name + "  ",
             el("span", { class: "acc-code" }, a.barcode)),
          el("img", { src: "/api/barcode?text=" + encodeURIComponent(a.barcode),
                      alt: a.barcode })));
      });
    }
  }

  var refreshing = null;
  function refresh() {
    if (refreshing) return refreshing;
    refreshing = rmad.get("/api/stations/" + encodeURIComponent(name)).then(function (s) {
      state = s;
      refreshing = null;
      renderReceipt();
      if (!window.rmadStation.pendingNext) text("next", nextStep());
      return s;
    }, function (e) {
      refreshing = null;
      text("receipt-title", "Cannot read the station: " + e.message);
    });
    return refreshing;
  }

  function onEvent(ev, seq) {
    seen.push(seq);
    document.body.setAttribute("data-last-seq", seq);
    var o = outcomeOf(ev);
    if (o) {
      window.rmadStation.pendingNext = !!ev.next;
      setOutcome(o[0], o[1], o[2], o[3], ev.next || null);
      if (ev.type === "scan.rejected") beep();
    }
    if (/^(scan\.accepted|receipt\.|inspection\.)/.test(ev.type)) refresh();
  }

  text("station-name", name);
  document.title = "rmad " + name;
  refresh().then(function (s) {
    if (!s) return;
    if (s.last_scan) {
      var o = outcomeOf(s.last_scan);
      if (o) setOutcome(o[0], o[1], o[2], o[3], s.last_scan.next || null);
    }
    var stream = rmad.events("station=" + encodeURIComponent(name), onEvent, function (up) {
      var l = document.getElementById("link");
      l.className = "link " + (up ? "up" : "down");
      l.textContent = up ? "live" : "reconnecting";
      document.body.setAttribute("data-live", up ? "1" : "0");
    });
    window.rmadStation.received = stream.received;
    stream.start(s.last_seq + 1);
  });
})();
