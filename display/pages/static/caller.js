// 软呼叫器 (/caller): a clerk works one of their windows from the browser, beside its keypad.
// Every key is a POST /api/windows/{window}/{op}; what the page shows is always the server's
// view (GET /api/windows/{window}), fetched again after each reply and after every push of the
// window's stream — so a key pressed on the hardware keypad shows here too.
const TICKET = { called: "已呼叫 · Called", serving: "办理中 · Serving" };
const WINDOW = { closed: "未登录 · Logged out", idle: "空闲 · Idle", serving: "工作中 · Working",
                 paused: "暂停 · Paused" };
const KEYS = { F1: "next", " ": "next", r: "recall", n: "no_show", s: "start", d: "done",
               h: "hold", e: "evaluate", p: "pause" };

let current = null;       // the window chosen
let view = null;          // its last view from the server
let stream = null;
let loading = false, again = false;

function show(id) {
  for (const v of ["signin-view", "caller-view", "refused-view"]) $(v).hidden = v !== id;
}

function say(error, fallback) {
  const e = error || {};
  $("error").textContent = e.message ? `${e.message}${e.message_en ? " · " + e.message_en : ""}` : fallback || "";
}

async function post(path, body) {
  const r = await fetch(path, { method: "POST", referrerPolicy: ORIGIN_SENT,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": session.csrf || "" },
    body: JSON.stringify(body || {}) });
  const data = await r.json().catch(() => ({ ok: false, error: {} }));
  return { r, data };
}

// ---------------------------------------------------------------- the window's view
async function refresh() {
  if (!current) return;
  if (loading) { again = true; return; }             // one read at a time: the last one wins
  loading = true;
  try {
    do {
      again = false;
      const window = current;
      let r, data;
      try {
        r = await fetch(`/api/windows/${encodeURIComponent(window)}`, { cache: "no-store" });
        data = await r.json().catch(() => ({}));
      } catch (err) {
        $("offline").classList.add("show");
        continue;
      }
      if (window !== current) { again = true; continue; }
      if (r.status === 401) return signedOut();
      if (!data.ok) { view = null; render(); say(data.error, `读取窗口失败 (${r.status})`); continue; }
      view = data.window;
      render();
    } while (again);
  } finally {
    loading = false;
  }
}

function render() {
  const v = view;
  document.body.classList.toggle("no-window", !v);
  const state = v ? v.state : "closed";
  $("state").textContent = v ? WINDOW[state] || state : "—";
  $("state").className = `badge ${state}`;
  $("clerk").textContent = v && v.clerk
    ? `${v.name} · ${v.clerk_name || ""}（工号 ${v.clerk}）已登录` : v ? `${v.name} · 无人登录 · nobody logged in` : "";
  const cur = v && v.current;
  $("ticket").textContent = cur ? cur.number : "—";
  $("ticket").className = `number ${cur ? cur.state : "none"}`;
  $("ticket-state").textContent = cur ? TICKET[cur.state] || cur.state
    : v && v.state === "paused" ? "窗口已暂停 · Paused" : "当前无号 · No ticket";
  $("ticket-service").textContent = cur
    ? `${cur.service_name}${cur.recalls ? ` · 已重呼 ${cur.recalls} 次` : ""}${v.evaluating ? " · 评价中 Rating" : ""}`
    : "";
  const logged = !!(v && v.clerk), paused = !!(v && v.paused);
  const pause = $("pause");
  pause.dataset.op = paused ? "resume" : "pause";
  pause.firstChild.textContent = paused ? "恢复 " : "暂停 ";
  pause.querySelector(".en").textContent = paused ? "Resume" : "Pause";
  for (const b of document.querySelectorAll(".keys button, .tools button, .tools input, .tools select")) {
    b.disabled = !v;
  }
  for (const b of document.querySelectorAll(".keys button")) {
    const op = b.dataset.op;
    b.disabled = !logged || (paused && op !== "resume")
      || (!cur && ["recall", "no_show", "start", "done", "hold", "evaluate"].includes(op))
      || (cur && cur.state === "serving" && ["recall", "no_show", "start"].includes(op));
  }
  $("login").hidden = logged;
  $("logout").hidden = !logged;
  $("staff-box").hidden = logged || !!(session.principal && session.principal.staff);
  lines(v);
  held(v);
  transferChoices(v);
}

function chip(text, cls) { return el("span", `chip ${cls || ""}`, text); }

function lines(v) {
  const rows = [];
  for (const line of (v ? v.lines : [])) {
    const row = el("div", "line");
    row.dataset.service = line.service;
    const head = el("div", "line-head");
    head.append(el("span", "svc", `${line.service} ${line.name}`), el("span", "count", `等候 ${line.waiting} 人`));
    const next = el("div", "chips");
    next.append(...(line.next.length ? line.next.map(n => chip(n)) : [el("span", "muted", "无人等候 · none")]));
    row.append(head, next);
    rows.push(row);
  }
  if (v && v.directed && v.directed.waiting) {
    const row = el("div", "line");
    const head = el("div", "line-head");
    head.append(el("span", "svc", "转入本窗口 · Transferred here"), el("span", "count", `${v.directed.waiting} 人`));
    const next = el("div", "chips");
    next.append(...v.directed.next.map(n => chip(n)));
    row.append(head, next);
    rows.push(row);
  }
  $("lines").replaceChildren(...rows);
}

function held(v) {
  const list = v ? v.held : [];
  if (!list.length) return $("held").replaceChildren(el("span", "muted", "无 · none"));
  $("held").replaceChildren(...list.map(t => {
    const b = el("button", "chip call-back", `回呼 ${t.number}`);
    b.dataset.number = t.number;
    b.disabled = !(v.clerk && !v.paused);
    b.addEventListener("click", () => operate("call", { number: t.number }));
    return b;
  }));
}

let choicesFor = "";
function transferChoices(v) {
  const key = v ? JSON.stringify([v.window, v.services, v.windows]) : "";
  if (key === choicesFor) return;
  choicesFor = key;
  const to = $("to");
  const chosen = to.value;
  to.replaceChildren();
  if (!v) return;
  const services = el("optgroup"), windows = el("optgroup");
  services.label = "业务 · Services";
  windows.label = "窗口 · Windows";
  for (const s of v.services) {
    const o = el("option", "", `${s.service} ${s.name}`);
    o.value = `s:${s.service}`;
    services.append(o);
  }
  for (const w of v.windows.filter(w => w.window !== v.window)) {
    const o = el("option", "", w.name);
    o.value = `w:${w.window}`;
    windows.append(o);
  }
  to.append(services, windows);
  if (chosen && [...to.options].some(o => o.value === chosen)) to.value = chosen;
}

// ---------------------------------------------------------------- operations
// Keys go to the server one after another, in the order pressed (a key pressed while the
// previous one is on its way waits for it, never overtakes it, and is never dropped).
let chain = Promise.resolve(), pending = 0;
function operate(op, body) {
  const window = current;
  if (!window) return Promise.resolve(false);
  pending += 1;
  document.body.classList.add("busy");
  const run = chain.then(() => send(window, op, body)).finally(() => {
    pending -= 1;
    if (!pending) document.body.classList.remove("busy");
  });
  chain = run.catch(() => false);
  return run;
}

async function send(window, op, body) {
  if (window !== current) return false;             // the clerk chose another window meanwhile
  say(null, "");
  try {
    const { r, data } = await post(`/api/windows/${encodeURIComponent(window)}/${op}`, body);
    if (r.status === 401) { signedOut(); return false; }
    if (!data.ok) say(data.error, `操作失败 (${r.status}) · Failed`);
    return !!data.ok;
  } catch (err) {
    say(null, "网络不通，请稍后重试 · Network problem, please retry");
    return false;
  } finally {
    refresh();
  }
}

for (const b of document.querySelectorAll(".keys button")) {
  b.addEventListener("click", () => operate(b.dataset.op));
}
$("login").addEventListener("click", () => {
  const staff = (session.principal && session.principal.staff) || $("staff").value.trim();
  operate("login", { staff });
});
$("logout").addEventListener("click", () => operate("logout"));
$("call-form").addEventListener("submit", e => {
  e.preventDefault();
  const number = $("number").value.trim().toUpperCase();
  if (!number) return $("number").focus();
  operate("call", { number }).then(ok => { if (ok) $("number").value = ""; });
});
$("transfer-form").addEventListener("submit", e => {
  e.preventDefault();
  const [kind, id] = ($("to").value || ":").split(":");
  if (!id) return;
  operate("transfer", kind === "s" ? { to_service: id } : { to_window: id });
});

document.addEventListener("keydown", e => {
  if ($("caller-view").hidden || e.ctrlKey || e.altKey || e.metaKey) return;
  const t = e.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
  const op = KEYS[e.key.length === 1 ? e.key.toLowerCase() : e.key];
  if (!op) return;
  e.preventDefault();
  if (e.repeat) return;
  if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
  // sent even when the key looks disabled: an earlier key may still be on its way, and the
  // server, which alone knows, answers a key that does not apply now with its reason
  if (view) operate(op === "pause" ? $("pause").dataset.op : op);
});

// ---------------------------------------------------------------- which window
function choose(window) {
  current = window;
  view = null;
  say(null, "");
  const url = new URL(location.href);
  url.searchParams.set("window", window);
  history.replaceState(null, "", url);
  if (stream) stream.close();
  stream = followSession(`/api/windows/${encodeURIComponent(window)}/stream`,
    { board: refresh, call: refresh },
    { refused: status => (status === 401 ? signedOut() : refresh()) });
  refresh();
}

$("window").addEventListener("change", () => choose($("window").value));

async function windows() {
  const r = await fetch("/api/windows", { cache: "no-store" });
  const data = await r.json().catch(() => ({}));
  if (r.status === 401) return signedOut();
  if (!data.ok) {
    show("refused-view");
    $("refused-text").textContent = r.status === 403
      ? "您的账号没有窗口操作权限 · Your account may not operate windows"
      : `读取失败 (${r.status}) · Could not load`;
    return;
  }
  const select = $("window");
  select.replaceChildren(...data.windows.map(w => {
    const o = el("option", "", `${w.name}${w.role === "B" ? "（AB角）" : ""}`);
    o.value = w.window;
    return o;
  }));
  show("caller-view");
  const wanted = new URL(location.href).searchParams.get("window");
  const own = data.windows.find(w => w.role === "A") || data.windows[0];
  const window = wanted || (own && own.window);
  if (!window) return say(null, "您没有可操作的窗口 · You have no window to work at");
  if (![...select.options].some(o => o.value === window)) {
    const o = el("option", "", `${window}号窗口`);
    o.value = window;
    select.append(o);
  }
  select.value = window;
  choose(window);
}

// ---------------------------------------------------------------- who
function whoText(p) {
  return p.display_name && p.display_name !== p.name ? `${p.display_name}（${p.name}）` : p.name;
}

function signedOut() {
  if (stream) stream.close();
  stream = null;
  current = null;
  session.csrf = null;
  session.principal = null;
  $("me").textContent = "";
  $("signout").hidden = true;
  $("window").hidden = true;
  show("signin-view");
  $("user").focus();
}

$("signin").addEventListener("submit", async e => {
  e.preventDefault();
  const user = $("user").value.trim(), password = $("password").value;
  if (!user || !password) {
    $("signin-error").textContent = "请输入用户名和密码 · Enter your user name and password";
    return;
  }
  $("signin-error").textContent = "";
  let answer;
  try {
    answer = await post("/api/auth/login", { user, password });
  } catch (err) {
    $("signin-error").textContent = "网络不通，请稍后重试 · Network problem, please retry";
    return;
  }
  const { r, data } = answer;
  $("password").value = "";
  if (!data.ok) {
    $("signin-error").textContent = r.status === 401 ? "用户名或密码错误 · Wrong user name or password"
      : (data.error && data.error.message) || `登录失败 (${r.status})`;
    return;
  }
  await start();
});

$("signout").addEventListener("click", async () => {
  try { await post("/api/auth/logout"); } catch (err) { /* signed out here either way */ }
  signedOut();
});

async function start() {
  const status = await loadSession();
  if (status !== 200 || !session.principal) return signedOut();
  $("me").textContent = whoText(session.principal)
    + (session.principal.staff ? ` · 工号 ${session.principal.staff}` : "");
  $("signout").hidden = false;
  $("window").hidden = false;
  await windows();
}

start();
