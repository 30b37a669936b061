// The gallery's newest page, live: follows the gallery's events and adds each new image's
// thumbnail at the top, so images made in Discord, through the API or in another tab appear
// without a reload. EventSource opens the events again after a cut, sending the last image it
// saw, so nothing is missed or shown twice.
(function () {
  "use strict";
  const live = document.getElementById("live-gallery");
  const grid = document.getElementById("gallery-grid");
  const empty = document.getElementById("gallery-empty");
  if (!live || !grid || !window.EventSource) {
    return;
  }
  const events = new EventSource(live.dataset.events);
  events.addEventListener("images", function (event) {
    const added = JSON.parse(event.data);
    grid.insertAdjacentHTML("afterbegin", added.html);
    if (empty) {
      empty.hidden = true;
    }
  });
})();
