// Shared by every page. Text from the daemon (scans, RMA imports, policies) is only
// ever put into the DOM as text (textContent), never as markup; the server's
// Content-Security-Policy forbids inline script besides.
"use strict";

var rmad = (function () {
  // el("td", {class: "x"}, "text", child...): an element with attributes and children;
  // strings become text nodes.
  function el(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs)
      Object.keys(attrs).forEach(function (k) {
        if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
      });
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
    return e;
  }

  function text(id, s) {
    var e = document.getElementById(id);
    if (e) e.textContent = s === null || s === undefined ? "" : String(s);
    return e;
  }

  function get(path) {
    return fetch(path, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) throw new Error(j && j.error ? j.error : "HTTP " + r.status);
        return j;
      });
    });
  }

  var csrf = null;
  // Actions: POST with the session's CSRF token (GET /api/session).
  function post(path) {
    var token = csrf ? Promise.resolve(csrf) : get("/api/session").then(function (s) {
      csrf = s.csrf;
      return csrf;
    });
    return token.then(function (t) {
      return fetch(path, { method: "POST", credentials: "same-origin",
                           headers: { "X-CSRF-Token": t } });
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) throw new Error(j && j.error ? j.error : "HTTP " + r.status);
        return j;
      });
    });
  }

  function when(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    if (isNaN(d)) return iso;
    var p = function (n) { return (n < 10 ? "0" : "") + n; };
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " +
           p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }

  // Words for contract words: warranty_exchange -> "warranty exchange".
  function words(s) {
    return s === null || s === undefined ? "" : String(s).replace(/_/g, " ");
  }

  // The event stream, reconnecting: the browser sends Last-Event-ID by itself; when
  // the stream failed for good (an HTTP error), a new one starts after the last seq.
  // received: every seq that arrived, before duplicates are dropped (the tests check
  // that the server never sends one twice).
  function events(query, onEvent, onState) {
    var last = null, es = null, received = [];
    function open(from) {
      var q = query + (from ? (query ? "&" : "") + "from=" + from : "");
      es = new EventSource("/api/events" + (q ? "?" + q : ""));
      es.onopen = function () { if (onState) onState(true); };
      es.onerror = function () {
        if (onState) onState(false);
        if (es.readyState === EventSource.CLOSED)
          setTimeout(function () { open(last !== null ? last + 1 : null); }, 1000);
      };
      // Every event is a "message": its type is in the JSON (new types arrive too).
      es.onmessage = function (m) {
        var seq = parseInt(m.lastEventId, 10);
        received.push(seq);
        if (last !== null && seq <= last) return;  // never twice
        last = seq;
        onEvent(JSON.parse(m.data), seq);
      };
    }
    return { start: function (from) { open(from); }, received: received };
  }

  return { el: el, clear: clear, text: text, get: get, post: post, when: when,
           words: words, events: events };
})();
