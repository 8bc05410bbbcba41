// The Generate page's shape picker: frames over the photo once the photo is known, and the video size
// for the chosen shape and resolution. The sizes come from the server (output_size); without this file
// the picker is plain radio buttons with neutral frames (docs/formats.md).
(function () {
  "use strict";
  var picker = document.getElementById("shape-picker");
  if (!picker) { return; }
  var form = picker.closest("form");
  var photos = {};  // source ("url", "storage", "upload") -> {url, width, height}
  var asked = 0;

  function checked(name) {
    var input = form.querySelector('[name="' + name + '"]:checked');
    return input ? input.value : "";
  }

  function showSizes() {
    var resolution = checked("resolution") || "1080p";
    picker.querySelectorAll(".shape-size").forEach(function (el) {
      var text = el.getAttribute("data-size-" + resolution);
      if (text) { el.textContent = text; }
    });
    var chosen = form.querySelector('[name="aspect_ratio"]:checked');
    var size = chosen && chosen.closest(".shape").querySelector(".shape-size");
    document.getElementById("output-size").textContent = size ? size.textContent : "";
  }

  function cssUrl(url) {
    return 'url("' + url.replace(/["\\\n\r\f]/g, function (c) { return "%" + c.charCodeAt(0).toString(16).padStart(2, "0"); }) + '")';
  }

  // Ask the server for the size of the photo's own shape (one rule, in output_size), then show it.
  function askSourceSize(width, height) {
    var mine = ++asked;
    var query = width ? "?photo_width=" + width + "&photo_height=" + height : "?photo_width=";
    fetch(picker.getAttribute("data-size-url") + query, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var current = document.getElementById("source-size");
        if (mine !== asked || !current) { return; }
        current.outerHTML = html;
        showSizes();
      })
      .catch(function () { /* the size stays as the page said */ });
  }

  function showPhoto() {
    var photo = photos[checked("source")];
    if (photo) {
      picker.style.setProperty("--photo", cssUrl(photo.url));
      picker.style.setProperty("--photo-ratio", String(photo.width / photo.height));
      picker.classList.add("has-photo");
    } else {
      picker.style.removeProperty("--photo");
      picker.style.removeProperty("--photo-ratio");
      picker.classList.remove("has-photo");
    }
    picker.setAttribute("data-photo", photo ? photo.width + "x" + photo.height : "");
    askSourceSize(photo && photo.width, photo && photo.height);
  }

  function forget(source) {
    var old = photos[source];
    if (old && old.url.indexOf("blob:") === 0) { URL.revokeObjectURL(old.url); }
    delete photos[source];
  }

  function learn(source, url, size) {
    if (!url) {
      forget(source);
      showPhoto();
      return;
    }
    var image = new Image();
    image.onload = function () {
      var width = size ? size[0] : image.naturalWidth, height = size ? size[1] : image.naturalHeight;
      forget(source);
      if (width > 0 && height > 0) { photos[source] = { url: url, width: width, height: height }; }
      showPhoto();
    };
    image.onerror = function () {
      if (url.indexOf("blob:") === 0) { URL.revokeObjectURL(url); }
      forget(source);
      showPhoto();
    };
    image.src = url;
  }

  // A picked storage image: its thumbnail says the photo's own size in a header.
  function learnThumbnail(url) {
    fetch(url, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { return Promise.reject(response.status); }
        var size = (response.headers.get("X-Image-Size") || "").split("x").map(Number);
        return response.blob().then(function (blob) {
          learn("storage", URL.createObjectURL(blob), size.length === 2 && size[0] > 0 && size[1] > 0 ? size : null);
        });
      })
      .catch(function () { learn("storage", ""); });
  }

  function learnFrom(target) {
    if (target.id === "id_url") {
      var url = target.value.trim();
      learn("url", /^https?:\/\//i.test(url) ? url : "");
    } else if (target.id === "id_upload") {
      var file = target.files && target.files[0];
      learn("upload", file ? URL.createObjectURL(file) : "");
    } else if (target.id === "id_storage_input") {
      // app.js marks the pick as selected only after this change event: find it by its value.
      var picked = document.querySelector('[data-pick="' + CSS.escape(target.value.trim()) + '"] img');
      if (picked) {
        learnThumbnail(picked.currentSrc || picked.src);
      } else {
        learn("storage", "");
      }
    }
  }

  form.addEventListener("change", function (event) {
    var target = event.target;
    if (target.name === "aspect_ratio" || target.name === "resolution") { showSizes(); }
    if (target.name === "source") { showPhoto(); }
    learnFrom(target);
  });
  ["id_url", "id_upload"].forEach(function (id) {
    var input = document.getElementById(id);
    if (input && (input.value || (input.files && input.files.length))) { learnFrom(input); }
  });
  showSizes();
})();
