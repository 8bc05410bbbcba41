// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // The Generate page's engine picker: the prices follow the engine, and a duration or shape it does
  // not offer is said before sending (the server answers the same as the API's 422 would).
  function syncEngine() {
    var chosen = document.querySelector('input[name="engine"]:checked');
    var box = document.getElementById("engine-problem");
    if (!chosen || !box) { return; }
    var form = chosen.form;
    form.querySelectorAll('input[name="duration"]').forEach(function (radio) {
      var price = chosen.getAttribute("data-price-" + radio.value);
      radio.setAttribute("data-price", price);
      var label = radio.closest("label").querySelector(".price");
      if (label) { label.textContent = price + " credits"; }
    });
    var problems = [];
    var durations = chosen.getAttribute("data-durations").split(",");
    var duration = form.querySelector('input[name="duration"]:checked');
    if (duration && durations.indexOf(duration.value) === -1) {
      problems.push("The engine “" + chosen.value + "” offers " + durations.join(" or ") + " s: choose another duration or engine.");
    }
    var shapes = chosen.getAttribute("data-shapes");
    var shape = form.querySelector('input[name="aspect_ratio"]:checked');
    if (shapes && shape && shapes.split(",").indexOf(shape.value) === -1) {
      var named = shapes.split(",").map(function (value) { return value === "source" ? "the photo's own shape" : value; });
      problems.push("The engine “" + chosen.value + "” cannot make " + shape.value + "; it offers " + named.join(", ") + ".");
    }
    box.textContent = problems.join(" ");
    box.hidden = !problems.length;
  }

  function syncConditional(root) {
    syncEngine();
    (root || document).querySelectorAll("[data-when]").forEach(function (el) {
      var parts = el.getAttribute("data-when").split("=");
      var form = el.closest("form") || document;
      var control = form.querySelector('[name="' + parts[0] + '"]:checked') || form.querySelector('select[name="' + parts[0] + '"]');
      var values = parts[1].split("|");
      el.classList.toggle("shown", !!control && values.indexOf(control.value) !== -1);
    });
    (root || document).querySelectorAll("[data-cost]").forEach(function (el) {
      var form = el.closest("form") || document;
      var checked = form.querySelector('[name="duration"]:checked');
      if (checked) { el.textContent = checked.getAttribute("data-price"); }
    });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("[data-autosubmit]")) { target.form.requestSubmit(); }
    if (target.matches("input[type=radio], select")) { syncConditional(); }
    if (target.matches("input[type=range][data-output]")) {
      document.getElementById(target.getAttribute("data-output")).textContent = target.value;
    }
  });
  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target.matches("input[type=range][data-output]")) {
      document.getElementById(target.getAttribute("data-output")).textContent = Number(target.value).toFixed(2);
    }
  });

  document.addEventListener("click", function (event) {
    var pick = event.target.closest("[data-pick]");
    if (pick) {
      event.preventDefault();
      var input = document.getElementById(pick.getAttribute("data-pick-target") || "id_storage_input");
      if (input) { input.value = pick.getAttribute("data-pick"); input.dispatchEvent(new Event("change", { bubbles: true })); }
      document.querySelectorAll("[data-pick].selected").forEach(function (el) { el.classList.remove("selected"); });
      pick.classList.add("selected");
      return;
    }
    var play = event.target.closest("a.play[data-video]");
    if (play) {
      event.preventDefault();
      var media = play.closest(".tile-media");
      var video = document.createElement("video");
      video.src = play.getAttribute("data-video");
      video.controls = true;
      video.autoplay = true;
      video.playsInline = true;
      video.preload = "metadata";
      var poster = media.querySelector("img");
      if (poster) { video.poster = poster.src; }
      media.replaceChildren(video);
      var playing = video.play();
      if (playing && playing.catch) { playing.catch(function () { /* the controls remain */ }); }
      return;
    }
    var toggle = event.target.closest("[data-nav-toggle]");
    if (toggle) {
      setMenu(toggle, toggle.getAttribute("aria-expanded") !== "true");
      return;
    }
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var source = document.getElementById(copy.getAttribute("data-copy"));
      var text = source.value || source.textContent;
      var done = function () { var label = copy.textContent; copy.textContent = "Copied"; setTimeout(function () { copy.textContent = label; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done);
      } else {
        var range = document.createRange(); range.selectNodeContents(source);
        var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
        document.execCommand("copy"); done();
      }
    }
  });

  // The main menu on narrow screens: a disclosure button; Escape closes it and returns focus.
  function setMenu(toggle, open) {
    var menu = document.getElementById(toggle.getAttribute("aria-controls"));
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    menu.classList.toggle("open", open);
    if (open) { var first = menu.querySelector("a, select, button"); if (first) { first.focus(); } }
  }
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var toggle = document.querySelector("[data-nav-toggle][aria-expanded=true]");
    if (toggle) { setMenu(toggle, false); toggle.focus(); }
  });

  // A form POST is sent once: its submit buttons are disabled while the browser waits for the answer
  // (the server also recognises a resent Generate form). htmx forms use hx-disabled-elt instead.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || (form.getAttribute("method") || "").toLowerCase() !== "post") { return; }
    if (form.hasAttribute("data-submitting")) { event.preventDefault(); return; }
    form.setAttribute("data-submitting", "");
    form.setAttribute("aria-busy", "true");
    // After this turn, so the clicked button's own name/value still goes with the form.
    setTimeout(function () {
      Array.prototype.forEach.call(form.elements, function (el) {
        if (el.type !== "submit") { return; }
        el.disabled = true;
        if (el.hasAttribute("data-busy-label")) { el.textContent = el.getAttribute("data-busy-label"); }
      });
    }, 0);
  });
  // Back/forward restores a page from the cache as it was left: enable its forms again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    document.querySelectorAll("form[data-submitting]").forEach(function (form) {
      form.removeAttribute("data-submitting");
      form.removeAttribute("aria-busy");
      Array.prototype.forEach.call(form.elements, function (el) { if (el.type === "submit") { el.disabled = false; } });
    });
  });

  // Errors: the summary links to each field; on arrival the focus goes to the first field in error.
  function focusField(id) {
    var target = document.getElementById(id);
    if (!target) { return false; }
    if (!target.matches("input, select, textarea, button")) {
      target = target.querySelector("input:not([type=hidden]), select, textarea") || target;
    }
    if (target.closest("[data-when]:not(.shown)")) { return false; }
    target.focus();
    return document.activeElement === target;
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-error-summary] a[data-focus]");
    if (link && focusField(link.getAttribute("data-focus"))) { event.preventDefault(); }
  });
  function focusFirstError() {
    var summary = document.querySelector("[data-error-summary]");
    if (!summary) { return; }
    var links = summary.querySelectorAll("a[data-focus]");
    for (var i = 0; i < links.length; i++) { if (focusField(links[i].getAttribute("data-focus"))) { return; } }
    summary.setAttribute("tabindex", "-1");
    summary.focus();
  }

  document.addEventListener("DOMContentLoaded", function () { syncConditional(); focusFirstError(); });
  document.addEventListener("htmx:afterSettle", function () { syncConditional(); });
})();
