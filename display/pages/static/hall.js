// Shared by the hall's pages: server-sent events with a reconnect banner, the page's session
// (an enrolled screen or kiosk, or a signed-in person), the "not enrolled" notice, a chime.
// No inline scripts anywhere: the hall server's Content-Security-Policy allows files only.
const $ = id => document.getElementById(id);

// A window's state as its screens say it: a ticket called but not yet come is not "serving".
const WINDOW_STATE = {
  called: ["已叫号", "Called"], serving: ["办理中", "Serving"], idle: ["空闲", "Free"],
  paused: ["暂停服务", "Paused"], closed: ["未开放", "Closed"],
};
function windowState(w) {
  return w.state === "serving" && w.ticket_state === "called" ? "called" : w.state;
}

// The hall's own time (its time zone, from the board), whatever the screen's clock is set to:
// ``at`` is the hall server's time when the board was made, so a screen's wrong clock does not
// matter either.
const hallClock = { tz: undefined, skew: 0 };
function setHallClock(board) {
  if (board.timezone) hallClock.tz = board.timezone;
  const at = Date.parse(board.at);
  if (!Number.isNaN(at)) hallClock.skew = at - Date.now();
}
function hallTime(options) {
  const now = new Date(Date.now() + hallClock.skew);
  try {
    return new Intl.DateTimeFormat("zh-CN", { timeZone: hallClock.tz, hour12: false, ...options }).format(now);
  } catch (e) {                                   // an unknown zone: the screen's own
    return new Intl.DateTimeFormat("zh-CN", { hour12: false, ...options }).format(now);
  }
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

// EventSource reconnects by itself after a network drop; the banner says so meanwhile.
function follow(url, handlers) {
  const banner = document.getElementById("offline");
  const source = new EventSource(url);
  source.onopen = () => banner && banner.classList.remove("show");
  source.onerror = () => banner && banner.classList.add("show");
  for (const [kind, fn] of Object.entries(handlers)) {
    source.addEventListener(kind, e => fn(JSON.parse(e.data)));
  }
  return source;
}

// The status of a GET, without reading its body (a stream's too): a number, or 0 offline.
async function statusOf(url) {
  const stop = new AbortController();
  try {
    const r = await fetch(url, { cache: "no-store", signal: stop.signal });
    return r.status;
  } catch (e) {
    return 0;
  } finally {
    stop.abort();
  }
}

const REFUSED = status => status === 401 || status === 403;

// follow() for a page whose session the server may refuse (401 not signed in or enrolled,
// 403 a role that may not). EventSource gives up on any answer but 200 and does not say which;
// fetch asks. On a refusal ``refused(status)`` is called and the stream stays closed; on any
// other failure it is opened again after 3 s. ``banner: false`` leaves the banner alone.
function followSession(url, handlers, { refused, banner = true } = {}) {
  const offline = document.getElementById("offline");
  let source;
  const open = () => {
    source = new EventSource(url);
    source.onopen = () => banner && offline && offline.classList.remove("show");
    source.onerror = async () => {
      if (banner && offline) offline.classList.add("show");
      if (source.readyState !== EventSource.CLOSED) return;    // reconnecting by itself
      const status = await statusOf(url);
      if (REFUSED(status)) {
        if (banner && offline) offline.classList.remove("show");
        return refused && refused(status);
      }
      setTimeout(open, 3000);
    };
    for (const [kind, fn] of Object.entries(handlers)) {
      source.addEventListener(kind, e => fn(JSON.parse(e.data)));
    }
  };
  open();
  return { close: () => source.close() };
}

// A signed-in POST must carry this page's Origin (the server checks it). Under the page's
// "Referrer-Policy: no-referrer" the Fetch standard has a same-origin POST send "Origin: null"
// (Chromium sends the origin all the same); the request's own policy keeps the real one.
const ORIGIN_SENT = "same-origin";

// This page's session: its CSRF token goes with every POST (X-CSRF-Token). Answers the
// status of GET /api/auth/session: 200 signed in or enrolled, 401 neither, 404 on a server
// without sign-in (the kiosk box's own), 0 offline.
const session = { csrf: null, principal: null };
async function loadSession() {
  let r;
  try {
    r = await fetch("/api/auth/session", { cache: "no-store" });
  } catch (e) {
    return 0;
  }
  if (r.ok) {
    const data = await r.json().catch(() => ({}));
    session.csrf = data.csrf || null;
    session.principal = data.principal || null;
  }
  return r.status;
}

// The full-screen notice (the page's #unenrolled) instead of a broken page. It goes away by
// itself when ``probe`` (the page's own data) answers again: the device was enabled again.
let enrolledAgain;
function showNotEnrolled(probe) {
  document.body.classList.add("unenrolled");
  const banner = document.getElementById("offline");
  if (banner) banner.classList.remove("show");
  const notice = document.getElementById("unenrolled");
  if (notice) document.title = notice.dataset.title || document.title;
  if (probe && !enrolledAgain) {
    enrolledAgain = setInterval(async () => {
      if ((await statusOf(probe)) === 200) location.reload();
    }, 15000);
  }
}

// Ding-dong with the Web Audio API (no sound file to load); silent where audio is blocked.
let audio;

// A screen readies its sound at start. An unattended screen's browser must allow sound without
// a touch (Chromium: --autoplay-policy=no-user-gesture-required, see the README); where it does
// not, the screen says so and one touch turns the sound on.
function prepareSound() {
  try {
    audio = audio || new AudioContext();
  } catch (e) { return; }                      // no sound on this device
  if (audio.state === "running") return;
  const hint = document.createElement("div");
  hint.className = "sound-off";
  hint.setAttribute("role", "status");
  hint.textContent = "声音未开启：轻触屏幕开启 · Sound is off: touch the screen";
  document.body.appendChild(hint);
  const on = async () => {
    await audio.resume();
    if (audio.state === "running") hint.remove();
  };
  document.addEventListener("pointerdown", on, { once: true });
  document.addEventListener("keydown", on, { once: true });
}

function chime() {
  try {
    audio = audio || new AudioContext();
    [[1318.5, 0], [1046.5, 0.45]].forEach(([f, at]) => {
      const o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = f;
      g.gain.setValueAtTime(0.3, audio.currentTime + at);
      g.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + at + 0.45);
      o.connect(g).connect(audio.destination);
      o.start(audio.currentTime + at);
      o.stop(audio.currentTime + at + 0.45);
    });
  } catch (e) { /* no sound on this device */ }
}

// The estimated wait (预计等候) as the hall states it (controller/core/estimate.py): a range of
// minutes on the hall's clock, a started minute counting as one, or none while no window
// serves the service. [Chinese, English].
function waitText(range, minutes) {
  if (range === null) return ["暂无窗口办理", "no window open now"];
  if (!range) return [`约 ${minutes} 分钟`, `about ${minutes} min`];   // a server without ranges
  const [low, high] = range;
  if (low === 0 || high <= 1) {
    const n = Math.max(high, 1);
    return [`${n} 分钟内`, `within ${n} min`];
  }
  const span = low === high ? `${low}` : `${low}–${high}`;
  return [`约 ${span} 分钟`, `about ${span} min`];
}
