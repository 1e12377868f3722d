// 取号机 (/kiosk on the hall server, / on a kiosk box): choose a service, take a ticket, see
// it with the QR code of its status page. On the hall server the page is an enrolled device:
// the session's CSRF token goes with each POST, and a screen that is not (or no longer)
// enrolled says so full-screen. The box's own server has no sign-in (its session answers 404).
const SERVICES = "/api/kiosk/services";
let chosen = null, back = null;

class NotEnrolled extends Error {}

async function answer(r) {
  return r.json().catch(() => ({ ok: false, error: { message: "系统繁忙，请稍后重试" } }));
}

async function api(path, body, key) {
  const post = () => fetch(path, { method: "POST", body: JSON.stringify(body), referrerPolicy: ORIGIN_SENT,
    headers: { "Content-Type": "application/json", "Idempotency-Key": key,
               ...(session.csrf ? { "X-CSRF-Token": session.csrf } : {}) } });
  let r = await (body ? post() : fetch(path, { cache: "no-store" }));
  let data = await answer(r);
  const code = data.error && data.error.code;
  if (body && code === "bad_csrf" && (await loadSession()) === 200) {   // the session was renewed
    r = await post();
    data = await answer(r);
  }
  if (r.status === 401 || (r.status === 403 && data.error && data.error.code === "forbidden")) {
    throw new NotEnrolled();
  }
  if (!data.ok) throw new Error((data.error && data.error.message) || "取号失败，请重试");
  return data;
}

function notEnrolled() {
  $("ask").classList.remove("show");
  done();
  showNotEnrolled(SERVICES);
}


// The services fill the screen below the header, either way up: as many columns as suit the
// screen's shape and the number of services, up to 12 of them without scrolling.
function categories(services) { return [...new Set(services.map(s => s.category))]; }
function layout() {
  const main = $("services"), n = Math.max(1, main.children.length);
  const tall = innerHeight > innerWidth;
  const cols = tall ? (n <= 3 ? 1 : n <= 12 ? 2 : 3)
                    : (n <= 3 ? n : n <= 4 ? 2 : n <= 6 ? 3 : n <= 12 ? 4 : 5);
  main.dataset.cols = cols;                    // kiosk.css: the grid (no inline style: CSP)
  main.dataset.rows = Math.ceil(n / cols);
  main.dataset.few = String(n <= 6);           // few services: larger type on larger buttons
}
addEventListener("resize", layout);

let shown = "";                                // the services the buttons show, as JSON
async function load() {
  try {
    const data = await api(SERVICES);
    $("offline").classList.remove("show");
    $("hall").textContent = `${data.hall} · 请选择业务取号`;
    const seen = JSON.stringify(data.services);
    if (seen === shown) return;                // unchanged: the buttons (and focus) stay
    shown = seen;
    const list = [...data.services].sort((a, b) =>   // a category's services side by side
      categories(data.services).indexOf(a.category) - categories(data.services).indexOf(b.category));
    $("services").replaceChildren(...list.map(s => {
      const b = el("button", "svc");
      b.dataset.service = s.service;
      b.append(el("div", "cat", s.category), el("div", "name", s.name),
               el("div", "count", `等候 ${s.waiting} 人 · ${waitText(s.est_wait_range, s.est_wait_min)[0]}`));
      if (!s.available) { b.disabled = true; b.append(el("div", "reason", s.reason)); }
      b.onclick = () => ask(s);
      return b;
    }));
    layout();
  } catch (e) {
    if (e instanceof NotEnrolled) return notEnrolled();
    $("offline").classList.add("show");
    setTimeout(load, 3000);                    // recovers by itself after a network drop
  }
}

function ask(s) {
  chosen = s;
  $("a-service").textContent = s.name;
  $("error").textContent = "";
  $("a-code-row").classList.remove("show");
  $("ask").classList.add("show");
  $("a-plain").focus();
}

async function take(extra) {
  $("error").textContent = "";
  const key = `kiosk-${Date.now()}-${Math.random().toString(16).slice(2)}`;
  for (let attempt = 0; attempt < 3; attempt++) {   // a dropped request is retried, same key
    try {
      const data = await api("/api/tickets", { service: chosen.service, ...extra }, key);
      return show(data.ticket);
    } catch (e) {
      if (e instanceof NotEnrolled) return notEnrolled();
      if (e instanceof TypeError) { await new Promise(r => setTimeout(r, 1000)); continue; }
      $("error").textContent = e.message;
      return;
    }
  }
  $("error").textContent = "网络不通，请稍后重试 · Network problem, please retry";
  $("offline").classList.add("show");
  setTimeout(load, 3000);                      // load() hides the banner once it gets through
}

function show(t) {
  $("ask").classList.remove("show");
  $("r-number").textContent = t.number;
  $("r-service").textContent = t.service_name;
  const [zh, en] = waitText(t.est_wait_range, t.est_wait_min);
  $("r-ahead").replaceChildren(`前面还有 ${t.ahead} 人，${t.est_wait_range === null ? zh : `预计等待${zh}`}`,
                               el("span", "en", `${t.ahead} ahead · ${en}`));
  $("r-qr").src = `${t.status_path}/qr.svg`;
  $("result").classList.add("show");
  $("r-done").focus();
  clearTimeout(back);
  back = setTimeout(done, 20000);
  load();
}

function done() { $("result").classList.remove("show"); clearTimeout(back); }

$("a-plain").onclick = () => take({});
$("a-book").onclick = () => { $("a-code-row").classList.add("show"); $("a-code").focus(); };
$("a-code-go").onclick = () => take({ appointment: $("a-code").value.trim() });
$("a-cancel").onclick = () => $("ask").classList.remove("show");
$("r-done").onclick = done;
$("large").onclick = () => {
  const on = document.body.classList.toggle("large");
  $("large").setAttribute("aria-pressed", String(on));
};
document.addEventListener("keydown", e => {
  if (e.key === "Escape") { $("ask").classList.remove("show"); done(); }
});

// On a kiosk box, the program behind the page says what its printer and card reader see;
// the hall server has no such route (404), and the page stops asking.
async function boxState() {
  try {
    const r = await fetch("/api/kiosk/state", { cache: "no-store" });
    if (r.status !== 200) return;
    const s = await r.json();
    $("paper").classList.toggle("show", s.paper === "out");
    $("card").textContent = s.card
      ? `已读取身份证：${s.card.masked_name}${s.card.green ? " · 绿色通道" : ""}` : "";
  } catch (e) { /* offline: the banner says so */ }
  setTimeout(boxState, 1500);
}

async function start() {
  const status = await loadSession();
  if (status === 0) {                          // no network yet (the box just powered on)
    $("offline").classList.add("show");
    return setTimeout(start, 3000);
  }
  if (status === 401) return notEnrolled();
  load();
  boxState();
  // Counts stay current, pushed where this page may follow the hall's pushes (else polled).
  followSession("/api/stream", { board: () => load() }, { banner: false });
  // The hall's services change while it runs (an administrator adds or suspends one): the
  // list is fetched again every 10 s while the hall server answers.
  setInterval(() => {
    if (!$("offline").classList.contains("show") && !document.body.classList.contains("unenrolled")) load();
  }, 10000);
}
start();
