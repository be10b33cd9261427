// Tells the server the browser's time zone (the `tz` cookie, read by dynchat/timezones.py), so
// pages show times in it. A page that printed its times in another zone (its
// `data-times-in` says which) is reloaded once, right after the cookie is first set or changed.
(function () {
  "use strict";
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    // IANA names only ("Asia/Tokyo", "Etc/GMT+5"): nothing that needs quoting in a cookie.
    if (!zone || !/^[A-Za-z0-9_+\-/]{1,64}$/.test(zone)) return;
    var current = document.cookie.match(/(?:^|;\s*)tz=([^;]*)/);
    if (current && current[1] === zone) return;
    document.cookie = "tz=" + zone + "; path=/; max-age=31536000; SameSite=Lax";
    var saved = document.cookie.match(/(?:^|;\s*)tz=([^;]*)/);
    // Reload only when the cookie took (else every load would reload) and only once: after the
    // reload the cookie already holds the zone, whatever the server made of it.
    if (!saved || saved[1] !== zone) return;
    document.addEventListener("DOMContentLoaded", function () {
      var shown = document.querySelector("[data-times-in]");
      if (shown && shown.getAttribute("data-times-in") !== zone) window.location.reload();
    });
  } catch (error) {
    // No Intl time zone or cookies blocked: times stay in the server's zone, which pages name.
  }
})();
