// The branding page's live preview: it follows the form as the marketer edits, before saving.
// Only textContent and CSS custom properties are set from what is typed.
(function () {
  "use strict";
  var form = document.getElementById("branding-form");
  var preview = document.getElementById("widget-preview");
  if (!form || !preview) return;
  var widget = preview.querySelector(".pw");
  var avatar = preview.querySelector(".pw-av");
  var savedAvatar = avatar.getAttribute("src");
  var chosenAvatar = null; // an object URL for the file picked but not saved yet
  var COLOR = /^#[0-9a-fA-F]{6}$/;
  var FONT = /^[\w ,'"-]+$/;

  function value(name) {
    var field = form.elements[name];
    return field ? field.value : "";
  }

  function checked(name) {
    var field = form.elements[name];
    return !!(field && field.checked);
  }

  function update() {
    // Values the widget would refuse are left out, as the saved widget would never show them.
    if (COLOR.test(value("primary_color"))) preview.style.setProperty("--p", value("primary_color"));
    if (COLOR.test(value("text_color"))) preview.style.setProperty("--t", value("text_color"));
    if (FONT.test(value("font_family"))) preview.style.setProperty("--f", value("font_family"));
    var padding = parseInt(value("padding_px"), 10);
    if (padding >= 0 && padding <= 120) preview.style.setProperty("--g", padding + "px");
    widget.classList.toggle("left", value("position") === "left");
    preview.querySelector("[data-preview=header]").textContent = value("header");
    preview.querySelector("[data-preview=bot_name]").textContent = value("bot_name");
    var src = chosenAvatar || (checked("remove_avatar") ? null : savedAvatar);
    avatar.hidden = !src;
    if (src) avatar.src = src;
    else avatar.removeAttribute("src");
    // The bot shows "typing" only when it has a response delay.
    preview.querySelector(".pw-typing").hidden = !(parseInt(value("response_delay_ms"), 10) > 0);
  }

  form.addEventListener("input", update);
  form.addEventListener("change", function (event) {
    var field = event.target;
    if (field.name === "avatar") {
      if (chosenAvatar) URL.revokeObjectURL(chosenAvatar);
      var file = field.files && field.files[0];
      chosenAvatar = file && /^image\/(png|jpeg|webp)$/.test(file.type) ? URL.createObjectURL(file) : null;
    }
    if (field.name === "new_message_sound" && field.checked) chime();
    update();
  });
  update();

  // The tone the widget plays, so the marketer hears it when they switch it on.
  function chime() {
    try {
      var audio = new (window.AudioContext || window.webkitAudioContext)();
      var tone = audio.createOscillator();
      var gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.06, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.2);
      tone.connect(gain);
      gain.connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.2);
    } catch (e) {}
  }
})();
