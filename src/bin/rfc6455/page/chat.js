// The chat page: connects back to the server that served it, to the room its path names (`/` is
// the room everyone shares, `/team-a` is room team-a: share the link to share the room), shows
// every message of the room with the time it arrived and how many people are in it, and
// reconnects with an exponential back-off after a drop.
"use strict";

// The page is served at the room's path; `?presence` asks the server for presence messages.
const room = location.pathname;
const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + room + "?presence";
// How presence messages start; the server never relays a client's message that starts so.
const PRESENCE_PREFIX = '{"presence":';
const log = document.getElementById("log");
const statusLine = document.getElementById("status");
const form = document.getElementById("composer");
const input = document.getElementById("message");
const sendButton = document.getElementById("send");
const roomName = document.getElementById("room");
const peopleLine = document.getElementById("people");

roomName.textContent = room === "/" ? "everyone" : room.slice(1);
document.title = room === "/" ? "rfc6455 chat" : `${room.slice(1)} · rfc6455 chat`;

let socket = null;
let attempt = 0;

function setState(state, text) {
  statusLine.dataset.state = state;
  document.body.dataset.state = state;
  statusLine.textContent = text;
  const open = state === "open";
  input.disabled = !open;
  sendButton.disabled = !open;
  if (open) input.focus();
}

function addLine(text, kind) {
  const item = document.createElement("li");
  item.className = kind;
  const time = document.createElement("time");
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = now.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const body = document.createElement("span");
  body.textContent = text; // never innerHTML: messages come from anyone
  item.append(time, body);
  log.append(item);
  item.scrollIntoView({ block: "end" });
}

// {"presence":{"room":"team-a","count":3}}: how many people are in the room (on this server).
function showPresence(text) {
  let count;
  try {
    count = JSON.parse(text).presence.count;
  } catch {
    return;
  }
  if (!Number.isInteger(count)) return;
  peopleLine.dataset.count = String(count);
  peopleLine.textContent = count === 1 ? "1 person here" : `${count} people here`;
}

function connect() {
  setState("connecting", attempt ? "Reconnecting…" : "Connecting…");
  socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => {
    if (attempt) addLine("Reconnected.", "notice");
    attempt = 0;
    setState("open", "Connected");
  };
  socket.onmessage = (event) => {
    if (typeof event.data === "string" && event.data.startsWith(PRESENCE_PREFIX)) {
      showPresence(event.data);
      return;
    }
    const text = typeof event.data === "string" ? event.data : `[${event.data.byteLength} bytes of binary]`;
    addLine(text, "message");
  };
  socket.onclose = (event) => {
    peopleLine.textContent = "";
    delete peopleLine.dataset.count;
    // 0.5 s, 1 s, 2 s … up to 10 s, with jitter so that many tabs do not return at once.
    const delay = Math.min(10000, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
    attempt += 1;
    const why = event.code === 1001 ? "server going away" : `code ${event.code}`;
    setState("closed", `Disconnected (${why}). Retrying in ${(delay / 1000).toFixed(1)} s`);
    if (attempt === 1) addLine(`Disconnected (${why}).`, "notice");
    setTimeout(connect, delay);
  };
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
  socket.send(text);
  input.value = "";
});

connect();
