// The install page's copy button (shown only when this script runs; the snippet can always be
// selected by hand).
(function () {
  "use strict";
  var status = document.getElementById("copy-status");
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = source.textContent;
      var copied = navigator.clipboard
        ? navigator.clipboard.writeText(text)
        : Promise.reject(new Error("no clipboard"));
      copied.then(
        function () {
          status.textContent = "Copied to the clipboard.";
        },
        function () {
          // No clipboard access (an http page, a refused permission): select it for Ctrl+C.
          var range = document.createRange();
          range.selectNodeContents(source);
          var selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          status.textContent = "Selected: press Ctrl+C (⌘C on a Mac) to copy.";
        }
      );
    });
  });
})();
