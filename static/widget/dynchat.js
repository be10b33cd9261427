/*! DynChat widget. Install with one tag:
 *  <script src="https://dynchat.host/static/widget/dynchat.js" data-site="PUBLIC_KEY" async></script>
 * Plain JavaScript, no dependencies, one global (DynChat). Its UI lives in a shadow root so the
 * host page's CSS cannot reach it, and marketer or visitor text only ever goes in textContent.
 */
(function (w, d) {
  "use strict";
  var script = d.currentScript;
  var stub = w.DynChat;
  // Loaded twice, or not from a <script> tag: the first copy stays in charge.
  if (!script || (stub && stub.loaded)) return;

  var siteKey = script.getAttribute("data-site") || "";
  // The API lives where the script comes from, whatever origin the host page is on.
  var apiRoot = (script.getAttribute("data-api") || new URL(script.src).origin).replace(/\/+$/, "");
  var base = apiRoot + "/api/widget/v1/sites/" + encodeURIComponent(siteKey);
  var VISITOR_KEY = "dynchat:" + siteKey + ":visitor";
  // The server's signed note of the dialogues this visitor completed; sent back with sessions.
  var STATE_KEY = "dynchat:" + siteKey + ":state";
  var CONVERSATION_KEY = "dynchat:" + siteKey + ":conversation";
  // When this browser first saw the site (for "time on site"), and the dialogues whose trigger
  // it met.
  var SINCE_KEY = "dynchat:" + siteKey + ":since";
  var MET_KEY = "dynchat:" + siteKey + ":met";
  // The time zone the visitor picked for meeting times, when not the one the browser reports.
  var ZONE_KEY = "dynchat:" + siteKey + ":zone";
  var IDENTITY_FIELDS = ["email", "firstName", "lastName", "phone", "company"];
  var EVENTS = "triggered engaged completed email_captured phone_captured goal_reached meeting_booked";
  var LABELS = { text: "Your answer", email: "Your email", phone: "Your phone number" };

  var listeners = {};
  var visitorId = load(VISITOR_KEY);
  var since = load(SINCE_KEY);
  if (typeof since !== "number" || since > Date.now()) save(SINCE_KEY, (since = Date.now()));
  var conversation = null; // {id, token, dialogue_id, open}: the open conversation, as stored
  var offer = null; // the dialogue the session offered, until it is started
  var theme = {};
  var ui = null;
  var starting = false;
  var wantsFocus = false; // the visitor acted in the widget, so new prompts may take focus
  var shown = Promise.resolve(); // bot messages appear one after the other, in this chain

  // Storage may be blocked (privacy modes, sandboxed frames): the widget then forgets on reload.
  function load(key) {
    try {
      return JSON.parse(w.localStorage.getItem(key));
    } catch (e) {
      return null;
    }
  }
  function save(key, value) {
    try {
      if (value == null) w.localStorage.removeItem(key);
      else w.localStorage.setItem(key, JSON.stringify(value));
    } catch (e) {}
  }

  function call(method, path, body, token) {
    var headers = {};
    if (body) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(base + path, {
      method: method,
      headers: headers,
      body: body ? JSON.stringify(body) : undefined,
      credentials: "omit",
      mode: "cors",
    }).then(function (response) {
      return response.json().then(
        function (data) {
          return { status: response.status, data: data || {} };
        },
        function () {
          return { status: response.status, data: {} };
        }
      );
    });
  }

  function pageUrl() {
    return w.location.href.slice(0, 2000);
  }

  // Marketo's Munchkin cookie, when the host page has one: the server finds the visitor's lead
  // by it. Undefined (so not sent) when absent, unreadable or too long for the API.
  function mkto() {
    try {
      var found = /(?:^|;\s*)_mkto_trk=([^;]{1,300})(?:;|$)/.exec(d.cookie);
      return found ? found[1] : undefined;
    } catch (e) {}
  }

  function emit(kind, extra) {
    var payload = {
      dialogue_id: conversation ? conversation.dialogue_id : offer && offer.id,
      conversation_id: conversation ? conversation.id : null,
    };
    for (var k in extra) payload[k] = extra[k];
    (listeners[kind] || []).forEach(function (callback) {
      // The host page's bug must not become ours: report it and carry on.
      try {
        callback(payload);
      } catch (e) {
        console.error("DynChat: an event callback threw", e);
      }
    });
  }

  function emitAll(events) {
    (events || []).forEach(function (event) {
      if (event.kind === "field_captured") {
        if (event.input_type === "email" || event.input_type === "phone") {
          emit(event.input_type + "_captured", {});
        }
      } else {
        var extra = event.goal ? { goal: event.goal } : event.start ? { start: event.start } : {};
        emit(event.kind, extra);
      }
    });
  }

  // ---- The UI ------------------------------------------------------------------------------

  var CSS =
    ":host{all:initial}" +
    ".w{position:fixed;bottom:var(--g);right:var(--g);z-index:2147483000;font:14px/1.4 var(--f);color:#1d1d1f;text-align:left}" +
    ".w.left{right:auto;left:var(--g)}" +
    "button{font:inherit;cursor:pointer;border:0;border-radius:8px;padding:8px 12px;margin:0;background:var(--p);color:var(--t)}" +
    "button:disabled{opacity:.6;cursor:default}" +
    "button:focus-visible,input:focus-visible,select:focus-visible{outline:3px solid #1d1d1f;outline-offset:2px;box-shadow:0 0 0 2px #fff}" +
    ".launcher{display:block;margin-left:auto;width:56px;height:56px;border-radius:50%;box-shadow:0 4px 14px rgba(0,0,0,.3);position:relative}" +
    ".left .launcher{margin:0}" +
    ".launcher:before{content:'';position:absolute;left:16px;top:17px;width:24px;height:17px;border-radius:5px;background:var(--t)}" +
    ".launcher:after{content:'';position:absolute;left:21px;top:32px;border:6px solid transparent;border-top-color:var(--t);border-left-color:var(--t)}" +
    ".panel{position:absolute;bottom:70px;right:0;width:340px;max-width:calc(100vw - 40px);height:460px;max-height:calc(100vh - 90px - var(--g));display:flex;flex-direction:column;background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25);overflow:hidden}" +
    ".left .panel{right:auto;left:0}" +
    ".panel[hidden]{display:none}" +
    ".head{display:flex;align-items:center;gap:8px;padding:10px 14px;background:var(--p);color:var(--t)}" +
    ".head div{flex:1}.head strong{display:block;font-size:15px}.head span{font-size:12px;opacity:.9}" +
    ".av{width:32px;height:32px;border-radius:50%;object-fit:cover;background:#fff}" +
    ".foot{padding:6px 12px;font-size:12px;text-align:center;border-top:1px solid #e3e3e3}" +
    ".foot a{color:#1d1d1f}" +
    ".close{font-size:22px;line-height:1;padding:2px 8px;background:transparent}" +
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px}" +
    ".msg{max-width:85%;padding:8px 12px;border-radius:12px;background:#eef0f4;color:#1d1d1f;white-space:pre-wrap;overflow-wrap:anywhere;align-self:flex-start}" +
    ".msg.visitor{align-self:flex-end;background:var(--p);color:var(--t)}" +
    ".msg.error{background:#fdecea;color:#8a1c12}" +
    ".typing i{display:inline-block;width:6px;height:6px;margin:0 2px;border-radius:50%;background:#777;animation:b 1s infinite}" +
    ".typing i+i{animation-delay:.2s}.typing i+i+i{animation-delay:.4s}" +
    "@keyframes b{50%{opacity:.2}}" +
    ".prompt{display:flex;flex-wrap:wrap;gap:6px;padding:10px 12px;border-top:1px solid #e3e3e3}" +
    ".prompt:empty{display:none}" +
    "form{display:flex;gap:6px;width:100%;margin:0}" +
    "input,select{flex:1;min-width:0;font:inherit;padding:8px;border:1px solid #8a8a8a;border-radius:8px;color:#1d1d1f;background:#fff}" +
    ".tz{align-self:center}.note{width:100%;margin:0}.note:empty{display:none}" +
    ".days{width:100%;max-height:min(150px,25vh);overflow:auto;padding:5px;margin:0 -5px}" +
    "fieldset{display:flex;flex-wrap:wrap;gap:4px;border:0;margin:0 0 6px;padding:0}legend{padding:0 0 4px;font-weight:600}" +
    ".alt{padding:6px 10px;background:#fff;color:#1d1d1f;border:1px solid #8a8a8a}.alt[aria-pressed=true]{background:var(--p);color:var(--t)}" +
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}";

  function el(tag, className, text) {
    var node = d.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function button(className, text) {
    var node = el("button", className, text);
    node.type = "button";
    return node;
  }

  function buildUI() {
    if (ui) return ui;
    // An unlikely tag name, so host selectors do not match it; everything else is in its shadow.
    var host = d.createElement("dynchat-widget");
    var root = host.attachShadow({ mode: "open" });
    var style = el("style", null, CSS);
    var wrap = el("div", "w" + (theme.position === "left" ? " left" : ""));
    wrap.style.setProperty("--p", theme.primary_color || "#2457d6");
    wrap.style.setProperty("--t", theme.text_color || "#ffffff");
    wrap.style.setProperty("--f", theme.font_family || "system-ui, sans-serif");
    wrap.style.setProperty("--g", (theme.padding_px >= 0 ? theme.padding_px : 20) + "px");

    var panel = el("div", "panel");
    panel.id = "panel";
    panel.hidden = true;
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", theme.header || "Chat");
    var head = el("div", "head");
    var titles = el("div");
    if (/^https?:\/\//i.test(theme.avatar_url || "")) {
      var avatar = head.appendChild(el("img", "av"));
      avatar.alt = ""; // decorative: the bot's name is written beside it
      avatar.src = theme.avatar_url;
    }
    titles.appendChild(el("strong", null, theme.header || ""));
    titles.appendChild(el("span", null, theme.bot_name || ""));
    var close = button("close", "\u00d7");
    close.setAttribute("aria-label", "Close chat");
    close.onclick = function () {
      hide(true);
    };
    head.appendChild(titles);
    head.appendChild(close);
    var log = el("div", "log");
    log.setAttribute("role", "log");
    log.setAttribute("aria-live", "polite");
    log.setAttribute("aria-label", "Conversation");
    var prompt = el("div", "prompt");
    panel.appendChild(head);
    panel.appendChild(log);
    panel.appendChild(prompt);
    // Only web links: the URL is the marketer's, and the host page's visitors click it.
    if (/^https?:\/\//i.test(theme.privacy_url || "")) {
      var link = el("a", null, "Privacy policy");
      link.href = theme.privacy_url;
      link.target = "_blank";
      link.rel = "noopener";
      panel.appendChild(el("div", "foot")).appendChild(link);
    }

    var launcher = button("launcher");
    launcher.setAttribute("aria-label", "Open chat");
    launcher.setAttribute("aria-controls", "panel");
    launcher.setAttribute("aria-expanded", "false");
    launcher.onclick = function () {
      if (panel.hidden) openChat(true);
      else hide(true);
    };
    wrap.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && !panel.hidden) {
        event.stopPropagation();
        hide(true);
      }
    });

    wrap.appendChild(panel);
    wrap.appendChild(launcher);
    root.appendChild(style);
    root.appendChild(wrap);
    d.body.appendChild(host);
    ui = { root: root, panel: panel, log: log, prompt: prompt, launcher: launcher, close: close };
    return ui;
  }

  function show(byVisitor) {
    buildUI();
    ui.panel.hidden = false;
    ui.launcher.setAttribute("aria-expanded", "true");
    ui.launcher.setAttribute("aria-label", "Close chat");
    remember({ open: true });
    scrollDown();
    if (byVisitor) {
      wantsFocus = true;
      (ui.prompt.querySelector("button,input,select") || ui.close).focus();
    }
  }

  function hide(byVisitor) {
    if (!ui || ui.panel.hidden) return;
    ui.panel.hidden = true;
    ui.launcher.setAttribute("aria-expanded", "false");
    ui.launcher.setAttribute("aria-label", "Open chat");
    wantsFocus = false;
    remember({ open: false });
    if (byVisitor) ui.launcher.focus();
  }

  function remember(changes) {
    if (!conversation || conversation.over) return;
    for (var k in changes) conversation[k] = changes[k];
    save(CONVERSATION_KEY, conversation);
  }

  function scrollDown() {
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  // A short soft tone, made on the spot: no file to fetch. Browsers may refuse audio before
  // the visitor has interacted with the page; then there is simply no sound.
  var audio;
  function chime() {
    if (!theme.new_message_sound) return;
    try {
      audio = audio || new (w.AudioContext || w.webkitAudioContext)();
      var tone = audio.createOscillator();
      var gain = audio.createGain();
      var now = audio.currentTime;
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.06, now);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.2);
      tone.connect(gain);
      gain.connect(audio.destination);
      tone.start(now);
      tone.stop(now + 0.2);
    } catch (e) {}
  }

  function addMessage(kind, text) {
    var node = el("div", "msg " + kind, text);
    ui.log.appendChild(node);
    scrollDown();
    return node;
  }

  function botSays(text) {
    chime();
    return addMessage("bot", text);
  }

  // Each bot message waits behind a typing indicator for the theme's response delay.
  function say(messages) {
    (messages || []).forEach(function (message) {
      shown = shown.then(function () {
        var delay = theme.response_delay_ms || 0;
        if (!delay) return botSays(message.text);
        var typing = addMessage("typing", null);
        typing.appendChild(el("span", "sr", (theme.bot_name || "DynChat") + " is typing"));
        for (var i = 0; i < 3; i++) typing.appendChild(el("i")).setAttribute("aria-hidden", "true");
        return new Promise(function (resolve) {
          setTimeout(function () {
            typing.remove();
            botSays(message.text);
            resolve();
          }, delay);
        });
      });
    });
    return shown;
  }

  function clearPrompt() {
    ui.prompt.textContent = "";
  }

  function renderPrompt(prompt) {
    clearPrompt();
    if (!prompt) return;
    var box = ui.prompt;
    if (prompt.kind === "choice") {
      prompt.choices.forEach(function (choice) {
        box.appendChild(button("choice", choice.label)).onclick = function () {
          answer(prompt, choice.value, box.querySelectorAll("button"));
        };
      });
    } else if (prompt.kind === "booking") {
      renderBooking(prompt, box);
    } else {
      var form = el("form");
      // The server validates (and its messages are the ones shown), not the browser.
      form.noValidate = true;
      var label = el("label", "sr", LABELS[prompt.kind] || LABELS.text);
      label.htmlFor = "answer";
      var input = el("input");
      input.id = "answer";
      input.type = prompt.kind === "phone" ? "tel" : prompt.kind === "email" ? "email" : "text";
      input.placeholder = prompt.placeholder || "";
      if (prompt.kind !== "text") input.autocomplete = input.type === "tel" ? "tel" : "email";
      var send = el("button", null, "Send");
      send.type = "submit";
      form.appendChild(label);
      form.appendChild(input);
      form.appendChild(send);
      form.onsubmit = function (event) {
        event.preventDefault();
        answer(prompt, input.value, [input, send]);
      };
      box.appendChild(form);
    }
    if (wantsFocus && !ui.panel.hidden) box.querySelector("button,input,select").focus();
  }

  // A meeting: the server offers times in the visitor's zone, grouped by day; the visitor picks
  // one, then confirms it. Changing the zone asks again (and is remembered for later visits).
  function renderBooking(prompt, box) {
    var talk = conversation;
    var zone = load(ZONE_KEY);
    var here = "UTC";
    var zones = [];
    try {
      here = Intl.DateTimeFormat().resolvedOptions().timeZone || here;
      zones = Intl.supportedValuesOf("timeZone");
    } catch (e) {} // older browsers: the detected zone (or UTC) and the remembered one only
    if (typeof zone !== "string") zone = here;
    var label = box.appendChild(el("label", "tz", "Time zone"));
    var select = box.appendChild(el("select"));
    label.htmlFor = select.id = "tz";
    zones.concat(here, zone).forEach(function (name, i, all) {
      if (all.indexOf(name) === i) select.add(new Option(name.replace(/_/g, " "), name));
    });
    select.value = zone;
    // Announced by screen readers as it changes: loading, nothing free, or what went wrong.
    var status = box.appendChild(el("p", "note"));
    status.setAttribute("role", "status");
    var list = box.appendChild(el("div", "days"));
    var confirmButton = box.appendChild(button());
    var chosen, timer;
    var asked = 0;

    // The controls to disable while sending, the one that sent first (it gets focus back).
    function controls(first) {
      return [first].concat([].slice.call(box.querySelectorAll("button,select")));
    }

    // Asks after `wait` ms: arrow keys on the select change the zone at each press, so a new
    // zone waits for the visitor to settle instead of asking once per zone passed.
    function fetchSlots(wait) {
      var ask = ++asked;
      confirmButton.hidden = true;
      list.textContent = "";
      status.textContent = "Finding times\u2026";
      clearTimeout(timer);
      timer = setTimeout(function () {
        if (!list.isConnected) return;
        var query = new URLSearchParams({
          card_id: prompt.card_id,
          step: prompt.step,
          time_zone: zone,
        });
        call("GET", "/conversations/" + talk.id + "/slots?" + query, null, talk.token)
          .then(function (response) {
            // An answer to an older question (another zone), or the prompt has gone since.
            if (ask !== asked || !list.isConnected) return;
            var data = response.data;
            if (response.status === 409) return resume();
            if (response.status !== 200) return failedSlots(data.error);
            status.textContent = data.days.length ? "" : data.fallback || "No times are available right now.";
            data.days.forEach(function (day) {
              var group = list.appendChild(el("fieldset"));
              group.appendChild(el("legend", null, day.label));
              day.slots.forEach(function (slot) {
                var choice = group.appendChild(button("alt", slot.label));
                choice.setAttribute("aria-pressed", false);
                choice.onclick = function () {
                  list.querySelectorAll("[aria-pressed]").forEach(function (other) {
                    other.setAttribute("aria-pressed", other === choice);
                  });
                  chosen = slot;
                  confirmButton.textContent = "Book " + day.label + " at " + slot.label;
                  confirmButton.hidden = false;
                  // Right after the chosen day, so Tab reaches it without passing every day.
                  group.after(confirmButton);
                };
              });
            });
          })
          .catch(function () {
            if (ask === asked) failedSlots();
          });
      }, wait);
    }

    function failedSlots(error) {
      status.textContent = (error && error.message) || "Something went wrong. Please try again.";
      list.appendChild(button(null, "Try again")).onclick = function () {
        select.focus();
        fetchSlots(0);
      };
    }

    select.onchange = function () {
      save(ZONE_KEY, (zone = select.value));
      fetchSlots(400);
    };
    confirmButton.onclick = function () {
      var sending = controls(confirmButton);
      var body = {
        card_id: prompt.card_id,
        step: prompt.step,
        start: chosen.start,
        time_zone: zone,
      };
      send("/bookings", body, sending, function (message) {
        // Someone else got that time first: say so, and offer the times still free.
        addMessage("error", message);
        setDisabled(sending, false);
        select.focus();
        fetchSlots(0);
      });
    };
    if (prompt.skip_label) {
      var skip = box.appendChild(button("alt", prompt.skip_label));
      skip.onclick = function () {
        answer(prompt, "skip", controls(skip));
      };
    }
    fetchSlots(0);
  }

  function setDisabled(controls, disabled) {
    for (var i = 0; i < controls.length; i++) controls[i].disabled = disabled;
  }

  // ---- The conversation ------------------------------------------------------------------

  function play(step) {
    if (step.visitor_state) save(STATE_KEY, step.visitor_state);
    say(step.messages).then(function () {
      emitAll(step.events);
      finishOr(step);
    });
  }

  function finishOr(step) {
    if (step.done) {
      // A finished conversation takes no more answers: its token is of no more use.
      conversation.over = true;
      save(CONVERSATION_KEY, null);
      clearPrompt();
    } else {
      renderPrompt(step.prompt);
    }
  }

  function start(byVisitor) {
    if (conversation || starting || !offer) return;
    starting = true;
    return call("POST", "/conversations", {
      visitor_id: visitorId,
      dialogue_id: offer.id,
      page_url: pageUrl(),
      mkto_trk: mkto(),
    })
      .then(function (response) {
        if (response.status !== 201) return;
        conversation = {
          id: response.data.conversation_id,
          token: response.data.token,
          dialogue_id: offer.id,
        };
        offer = null;
        save(CONVERSATION_KEY, conversation);
        show(byVisitor);
        play(response.data);
      })
      .catch(warn)
      .finally(function () {
        starting = false;
      });
  }

  function answer(prompt, value, controls) {
    send("/answers", { card_id: prompt.card_id, step: prompt.step, value: value }, controls);
  }

  // Send the visitor's answer (or booking); `taken(message)` handles a booking's slot_taken.
  function send(path, body, controls, taken) {
    if (!conversation) return;
    wantsFocus = true;
    setDisabled(controls, true);
    call("POST", "/conversations/" + conversation.id + path, body, conversation.token).then(
      function (response) {
        var data = response.data;
        var error = data.error || {};
        if (response.status < 300) {
          clearPrompt();
          addMessage("visitor", data.answer.text);
          play(data);
        } else if (response.status === 422) {
          // Invalid input is re-asked: the same prompt stays, with the server's reason above it.
          addMessage("error", error.message || "Please try again.");
          retry(controls);
        } else if (taken && error.code === "slot_taken") {
          taken(error.message);
        } else if (response.status === 409) {
          resume(); // answered elsewhere (another tab) or already over: show what is true now
        } else {
          failed(controls);
        }
      },
      function () {
        failed(controls);
      }
    );
  }

  function failed(controls) {
    addMessage("error", "Something went wrong. Please try again.");
    retry(controls);
  }

  function retry(controls) {
    setDisabled(controls, false);
    var first = controls[0];
    if (first.select) first.select();
    first.focus();
  }

  // Re-render a stored conversation from the server's transcript (page reload, or a resync).
  function resume() {
    var stored = conversation;
    return call("GET", "/conversations/" + stored.id, null, stored.token).then(function (response) {
      if (response.status !== 200) {
        if (response.status === 404 || response.status === 401 || response.status === 403) {
          conversation = null;
          save(CONVERSATION_KEY, null);
        }
        return;
      }
      var data = response.data;
      if (data.done && !ui) {
        // Finished in another tab: nothing left to show on this page.
        conversation = null;
        save(CONVERSATION_KEY, null);
        return;
      }
      buildUI();
      ui.log.textContent = "";
      data.transcript.forEach(function (entry) {
        addMessage(entry.author === "visitor" ? "visitor" : "bot", entry.text);
      });
      finishOr(data);
      if (stored.open) show(false);
    });
  }

  function identify(attributes) {
    var body = { visitor_id: visitorId, mkto_trk: mkto() };
    IDENTITY_FIELDS.forEach(function (field) {
      if (attributes && typeof attributes[field] === "string") body[field] = attributes[field];
    });
    return call("POST", "/visitors/identify", body);
  }

  // Everything that must happen in order (the session, identify calls, starting a conversation)
  // goes through this one chain, so an identify() made before the trigger lands first.
  var ready = new Promise(function (resolve) {
    if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", resolve);
    else resolve();
  });
  var chain = ready
    .then(function () {
      var body = { page_url: pageUrl(), mkto_trk: mkto() };
      var state = load(STATE_KEY);
      if (typeof visitorId === "string" && /^[\w.-]{16,100}$/.test(visitorId)) {
        body.visitor_id = visitorId;
        if (typeof state === "string" && /^[\d-]{0,1900}\.[\w-]+$/.test(state)) {
          body.visitor_state = state;
        }
      }
      return call("POST", "/sessions", body);
    })
    .then(function (response) {
      if (response.status !== 200) throw new Error("no session (" + response.status + ")");
      var data = response.data;
      visitorId = data.visitor_id;
      save(VISITOR_KEY, visitorId);
      save(STATE_KEY, data.visitor_state);
      theme = data.theme || {};
      // Chat switched off for the site: the widget shows nothing at all (identify still works).
      if (!data.chat_enabled) return true;
      conversation = load(CONVERSATION_KEY);
      return Promise.resolve(conversation && conversation.id && resume()).then(function () {
        if (!conversation && data.dialogue) {
          offer = data.dialogue;
          buildUI();
          whenTriggered(offer, function () {
            later(start);
          });
        }
        return true;
      });
    })
    .catch(warn);

  // The dialogue's behaviour trigger: time on the page, time on the site (since the first page
  // view), or scroll depth. Met once, it fires at once on later pages, as in Marketo.
  function whenTriggered(dialogue, fire) {
    var trigger = dialogue.trigger || {};
    var met = load(MET_KEY);
    if (!Array.isArray(met)) met = [];
    function go() {
      if (met.indexOf(dialogue.id) < 0) save(MET_KEY, met.concat(dialogue.id).slice(-50));
      fire();
    }
    if (met.indexOf(dialogue.id) >= 0) return go();
    if (trigger.type === "scroll_depth") {
      var check = function () {
        var page = d.documentElement;
        var seen = ((w.scrollY + w.innerHeight) / Math.max(page.scrollHeight, 1)) * 100;
        if (seen + 0.5 < (trigger.percent || 0)) return;
        w.removeEventListener("scroll", check);
        go();
      };
      w.addEventListener("scroll", check, { passive: true });
      return check();
    }
    var wait = (trigger.seconds || 0) * 1000;
    if (trigger.type === "time_on_site") wait -= Date.now() - since;
    setTimeout(go, Math.max(wait, 0));
  }

  function warn(error) {
    console.warn("DynChat:", error);
    return false;
  }

  // Run a task once there is a session; a failing task does not stop the next one.
  function later(task) {
    chain = chain.then(function (ok) {
      if (!ok) return false;
      return Promise.resolve()
        .then(task)
        .catch(warn)
        .then(function () {
          return true;
        });
    });
  }

  function openChat(byVisitor) {
    if (conversation) show(byVisitor);
    else return start(byVisitor);
  }

  var methods = {
    open: function () {
      later(function () {
        return openChat(true);
      });
    },
    close: function () {
      later(function () {
        hide(false);
      });
    },
    identify: function (attributes) {
      later(function () {
        return identify(attributes);
      });
    },
    on: function (event, callback) {
      if (EVENTS.split(" ").indexOf(event) < 0 || typeof callback !== "function") return;
      (listeners[event] = listeners[event] || []).push(callback);
    },
  };

  function DynChat(name) {
    var method = methods[name];
    if (method) method.apply(null, [].slice.call(arguments, 1));
  }
  for (var name in methods) DynChat[name] = methods[name];
  DynChat.loaded = true;
  w.DynChat = DynChat;
  // Replay what the host page asked for before we loaded, in order.
  ((stub && stub.q) || []).forEach(function (args) {
    DynChat.apply(null, args);
  });
})(window, document);
