// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function syncConditional(root) {
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

  document.addEventListener("DOMContentLoaded", function () { syncConditional(); });
  document.addEventListener("htmx:afterSettle", function () { syncConditional(); });
})();
