/* opsdesk chat widget. Embed on any site whose origin the brand allows:
 *   <script src="https://desk.example/widget.js" data-brand="acme" async></script>
 * Plain JavaScript, no dependencies, no build step. It draws a launcher button and a chat panel
 * inside a shadow root (the host page's CSS cannot break it), asks for a name and an email before
 * the first message, keeps the conversation across reloads (a visitor token in localStorage) and
 * talks to opsdesk over a WebSocket. Messages not yet acknowledged are resent with the same
 * client id after a reconnect; opsdesk stores a resend once.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) { return; }
  var brand = script.getAttribute("data-brand") || "";
  var base = new URL(script.src, window.location.href);
  var origin = base.origin;
  var socketUrl = (base.protocol === "https:" ? "wss://" : "ws://") + base.host +
    "/api/v1/channels/chat/ws?brand=" + encodeURIComponent(brand);
  var storageKey = "opsdesk-chat:" + origin + ":" + brand;
  var openKey = storageKey + ":open";

  function load(key) { try { return window.localStorage.getItem(key); } catch (e) { return null; } }
  function save(key, value) {
    try { if (value === null) { window.localStorage.removeItem(key); } else { window.localStorage.setItem(key, value); } } catch (e) { /* private mode */ }
  }
  function newClientId() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  var css = [
    ":host{all:initial}",
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}",
    ".launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:28px;padding:14px 20px;background:#1f4fd1;color:#fff;font-size:15px;font-weight:600;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25)}",
    ".launcher:focus-visible,button:focus-visible,input:focus-visible,textarea:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}",
    ".badge{display:inline-block;min-width:20px;margin-left:8px;padding:1px 6px;border-radius:10px;background:#d4351c;color:#fff;font-size:12px}",
    ".panel{position:fixed;right:20px;bottom:84px;z-index:2147483000;width:360px;max-width:calc(100vw - 40px);height:520px;max-height:calc(100vh - 110px);display:flex;flex-direction:column;background:#fff;color:#1b1b1b;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.3);overflow:hidden}",
    ".panel[hidden]{display:none}",
    "header{display:flex;align-items:center;justify-content:space-between;padding:12px 14px;background:#1f4fd1;color:#fff}",
    "header h2{margin:0;font-size:16px}",
    ".close{background:transparent;border:0;color:#fff;font-size:22px;line-height:1;cursor:pointer;padding:2px 8px}",
    ".state{margin:0;padding:8px 14px;font-size:13px;background:#eef2fb;color:#1b1b1b}",
    ".log{flex:1;overflow-y:auto;padding:12px 14px;margin:0;list-style:none}",
    ".log li{margin:0 0 10px;max-width:85%;padding:8px 11px;border-radius:10px;font-size:14px;line-height:1.4;white-space:pre-wrap;word-wrap:break-word}",
    ".log li.visitor{margin-left:auto;background:#1f4fd1;color:#fff}",
    ".log li.agent{background:#f0f0f0}",
    ".log li.pending{opacity:.6}",
    ".log .who{display:block;font-size:11px;font-weight:600;margin-bottom:2px;opacity:.8}",
    "form{padding:10px 14px;border-top:1px solid #ddd;margin:0}",
    "label{display:block;font-size:13px;font-weight:600;margin:6px 0 3px}",
    "input,textarea{width:100%;padding:8px;border:1px solid #888;border-radius:6px;font-size:14px}",
    "textarea{resize:none;height:60px}",
    ".row{display:flex;gap:8px;align-items:flex-end}",
    ".send{border:0;border-radius:6px;padding:9px 14px;background:#1f4fd1;color:#fff;font-size:14px;font-weight:600;cursor:pointer}",
    ".end{background:transparent;border:0;color:#fff;text-decoration:underline;font-size:12px;cursor:pointer}",
    ".error{color:#b3261e;font-size:13px;margin:6px 0 0}",
    ".typing{font-size:12px;color:#555;padding:0 14px 6px;min-height:18px}"
  ].join("");

  var host = document.createElement("div");
  host.setAttribute("data-opsdesk-chat", brand);
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  root.innerHTML =
    "<style>" + css + "</style>" +
    "<button type='button' class='launcher' aria-expanded='false' aria-controls='opsdesk-chat-panel'>" +
    "<span class='launcher-label'>Chat with us</span><span class='badge' hidden aria-label='unread messages'></span></button>" +
    "<section class='panel' id='opsdesk-chat-panel' role='dialog' aria-modal='false' aria-labelledby='opsdesk-chat-title' hidden>" +
    "<header><h2 id='opsdesk-chat-title'>Chat</h2><span><button type='button' class='end' hidden>End chat</button>" +
    "<button type='button' class='close' aria-label='Close chat'>&times;</button></span></header>" +
    "<p class='state' role='status' aria-live='polite'>Connecting…</p>" +
    "<ol class='log' role='log' aria-live='polite' aria-label='Conversation'></ol>" +
    "<div class='typing' aria-live='polite'></div>" +
    "<form class='identity' hidden novalidate>" +
    "<label for='opsdesk-chat-name'>Your name</label><input id='opsdesk-chat-name' name='name' autocomplete='name' required maxlength='200'>" +
    "<label for='opsdesk-chat-email'>Your email</label><input id='opsdesk-chat-email' name='email' type='email' autocomplete='email' required maxlength='320'>" +
    "<p class='error identity-error' role='alert'></p>" +
    "<button type='submit' class='send'>Start chat</button></form>" +
    "<form class='compose' hidden novalidate><label for='opsdesk-chat-message'>Message</label>" +
    "<div class='row'><textarea id='opsdesk-chat-message' name='body' maxlength='5000'></textarea>" +
    "<button type='submit' class='send'>Send</button></div><p class='error compose-error' role='alert'></p></form>" +
    "</section>";
  document.body.appendChild(host);

  function $(selector) { return root.querySelector(selector); }
  var launcher = $(".launcher"), panel = $(".panel"), closeButton = $(".close"), endButton = $(".end");
  var stateLine = $(".state"), log = $(".log"), typingLine = $(".typing"), badge = $(".badge");
  var identityForm = $(".identity"), composeForm = $(".compose"), textarea = $("#opsdesk-chat-message");

  var socket = null, token = load(storageKey), conversation = null, fatal = false, retries = 0;
  var unacked = {}, shown = {}, unread = 0, pingTimer = null, typingTimer = null, lastTyping = 0;

  function setState(text) { stateLine.textContent = text; }
  function describe(conv, agentsOnline) {
    if (!conv) { return agentsOnline ? "We're online. Tell us who you are to start." : "No agent is online right now. Leave a message and we'll answer by email."; }
    if (conv.status === "waiting") { return "Waiting for an agent…"; }
    if (conv.status === "active") { return (conv.agent_name || "An agent") + " is chatting with you."; }
    if (conv.status === "offline") { return "No agent is available right now. We'll answer by email at " + conv.visitor_email + "."; }
    if (conv.status === "ended") { return "The chat has ended. Write again to reopen it; replies also reach you by email."; }
    return "";
  }

  function show(message) {
    var key = message.id ? "m" + message.id : "c" + message.client_id;
    if (message.client_id && shown["c" + message.client_id]) {
      var pending = shown["c" + message.client_id];
      pending.classList.remove("pending");
      if (message.id) { shown["m" + message.id] = pending; }
      return;
    }
    if (shown[key]) { return; }
    var item = document.createElement("li");
    item.className = message.from === "agent" ? "agent" : "visitor";
    if (!message.id) { item.classList.add("pending"); }
    var who = document.createElement("span");
    who.className = "who";
    who.textContent = message.from === "agent" ? (message.author || "Agent") : "You";
    item.appendChild(who);
    item.appendChild(document.createTextNode(message.body));
    log.appendChild(item);
    shown[key] = item;
    if (message.client_id) { shown["c" + message.client_id] = item; }
    if (message.id) { shown["m" + message.id] = item; }
    log.scrollTop = log.scrollHeight;
    if (message.from === "agent" && panel.hidden) {
      unread += 1;
      badge.textContent = String(unread);
      badge.hidden = false;
    }
  }

  function showForms() {
    identityForm.hidden = !!conversation || fatal;
    composeForm.hidden = !conversation || fatal;
    endButton.hidden = !conversation || !(conversation.status === "waiting" || conversation.status === "active");
  }

  function send(frame) {
    if (socket && socket.readyState === 1) { socket.send(JSON.stringify(frame)); return true; }
    return false;
  }

  function resendUnacked() {
    Object.keys(unacked).forEach(function (clientId) {
      send({ type: "message", client_id: clientId, body: unacked[clientId] });
    });
  }

  function connect() {
    if (fatal || socket) { return; }
    socket = new WebSocket(socketUrl);
    socket.onopen = function () {
      retries = 0;
      send({ type: "hello", token: token });
      clearInterval(pingTimer);
      pingTimer = setInterval(function () { send({ type: "ping" }); }, 25000);
    };
    socket.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      handle(frame);
    };
    socket.onclose = function (event) {
      socket = null;
      clearInterval(pingTimer);
      if (event.code >= 4400 && event.code < 4500) {
        fatal = true;
        showForms();
        return;
      }
      setState("Reconnecting…");
      retries += 1;
      setTimeout(connect, Math.min(10000, 500 * Math.pow(2, retries)));
    };
  }

  function handle(frame) {
    if (frame.type === "welcome" || frame.type === "started") {
      if (frame.type === "started") { token = frame.token; save(storageKey, token); }
      conversation = frame.conversation;
      (frame.messages || []).forEach(show);
      setState(describe(conversation, frame.agents_online));
      showForms();
      resendUnacked();
      if (frame.type === "started" && !panel.hidden) { textarea.focus(); }
    } else if (frame.type === "ack") {
      delete unacked[frame.client_id];
      var item = shown["c" + frame.client_id];
      if (item) { item.classList.remove("pending"); if (frame.message_id) { shown["m" + frame.message_id] = item; } }
      if (frame.conversation) { conversation = frame.conversation; setState(describe(conversation, true)); showForms(); }
    } else if (frame.type === "message") {
      if (frame.from === "visitor" && frame.client_id) { delete unacked[frame.client_id]; }
      show(frame);
      if (frame.from === "agent") { typingLine.textContent = ""; }
    } else if (frame.type === "status") {
      conversation = frame.conversation;
      setState(describe(conversation, true));
      showForms();
    } else if (frame.type === "typing") {
      typingLine.textContent = "The agent is typing…";
      clearTimeout(typingTimer);
      typingTimer = setTimeout(function () { typingLine.textContent = ""; }, 4000);
    } else if (frame.type === "error") {
      if (frame.code === "bad_token") {
        token = null; save(storageKey, null); conversation = null; showForms();
        setState("Your previous conversation has expired. Tell us who you are to start a new one.");
      } else if (frame.code === "unknown_brand" || frame.code === "origin_not_allowed") {
        fatal = true; showForms();
        setState("Chat is not available on this site (" + frame.detail + ").");
      } else if (!conversation) {
        $(".identity-error").textContent = frame.errors && frame.errors.length ? frame.errors.map(function (f) { return f.message; }).join(" ") : frame.detail;
      } else {
        if (frame.ref && unacked[frame.ref] !== undefined && frame.code !== "server_error") {
          var failed = shown["c" + frame.ref];
          if (failed) { failed.remove(); delete shown["c" + frame.ref]; }
          delete unacked[frame.ref];
        }
        $(".compose-error").textContent = frame.detail;
      }
    }
  }

  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    save(openKey, "1");
    unread = 0; badge.hidden = true;
    connect();
    var target = !identityForm.hidden ? $("#opsdesk-chat-name") : (!composeForm.hidden ? textarea : closeButton);
    target.focus();
  }
  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    save(openKey, null);
    launcher.focus();
  }

  launcher.addEventListener("click", function () { if (panel.hidden) { open(); } else { close(); } });
  closeButton.addEventListener("click", close);
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") { close(); } });
  endButton.addEventListener("click", function () { send({ type: "end" }); });

  identityForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var name = $("#opsdesk-chat-name").value.trim(), email = $("#opsdesk-chat-email").value.trim();
    var problems = [];
    if (!name) { problems.push("Tell us your name."); }
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) { problems.push("Enter the email address we can answer to."); }
    $(".identity-error").textContent = problems.join(" ");
    if (problems.length) { return; }
    if (!send({ type: "start", name: name, email: email })) { $(".identity-error").textContent = "Not connected yet; please retry in a moment."; }
  });

  function submitMessage() {
    var body = textarea.value.trim();
    $(".compose-error").textContent = "";
    if (!body) { $(".compose-error").textContent = "Write a message first."; return; }
    if (body.length > 5000) { $(".compose-error").textContent = "Messages are limited to 5000 characters."; return; }
    var clientId = newClientId();
    unacked[clientId] = body;
    show({ client_id: clientId, from: "visitor", body: body });
    textarea.value = "";
    send({ type: "message", client_id: clientId, body: body });
  }
  composeForm.addEventListener("submit", function (event) { event.preventDefault(); submitMessage(); });
  textarea.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); submitMessage(); return; }
    var now = Date.now();
    if (now - lastTyping > 2000) { lastTyping = now; send({ type: "typing" }); }
  });

  fetch(origin + "/api/v1/channels/chat/brands/" + encodeURIComponent(brand), { mode: "cors", credentials: "omit" })
    .then(function (response) { return response.json().then(function (body) { return { ok: response.ok, body: body }; }); })
    .then(function (answer) {
      if (!answer.ok) {
        fatal = true;
        setState("Chat is not available on this site (" + (answer.body.detail || "refused") + ").");
        showForms();
        return;
      }
      $("#opsdesk-chat-title").textContent = answer.body.name;
      $(".launcher-label").textContent = answer.body.agents_online ? "Chat with us" : "Leave us a message";
      if (!conversation) { setState(answer.body.greeting + " " + describe(null, answer.body.agents_online)); }
    })
    .catch(function () { /* the socket reports problems */ });

  // A returning visitor reconnects at once to receive replies; the panel reopens if it was open.
  if (token) { connect(); }
  if (load(openKey)) { open(); }
})();
