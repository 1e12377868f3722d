// 登录 (/login): a person signs in; an administrator then enrols this browser as one of the
// hall's page devices (a kiosk, the hall screen or a window screen) and it opens that page.
const ROLE = { admin: "管理员 admin", supervisor: "值班长 supervisor", desk: "总台 desk",
               clerk: "窗口 clerk", viewer: "查询 viewer", kiosk: "取号机 kiosk", screen: "屏幕 screen" };
const KINDS = [["kiosk", "取号机", "Kiosks"], ["hall_display", "综合屏", "Hall screens"],
               ["window_display", "窗口屏", "Window screens"], ["evaluator", "评价器", "Evaluators"]];
let waitTimer = null;

function showStep(id) {
  for (const step of ["sign-in", "enrol", "me"]) $(step).hidden = step !== id;
  document.title = { "sign-in": "登录 · Sign in", enrol: "登记本屏 · Enrol this screen",
                     me: "已登录 · Signed in" }[id];
}

async function send(path, body) {
  const headers = { "Content-Type": "application/json" };
  if (session.csrf) headers["X-CSRF-Token"] = session.csrf;
  const r = await fetch(path, { method: "POST", headers, body: JSON.stringify(body || {}),
                                referrerPolicy: ORIGIN_SENT });
  const data = await r.json().catch(() => ({ ok: false, error: {} }));
  return { r, data };
}

function say(where, error, fallback) {
  const e = error || {};
  $(where).textContent = e.message ? `${e.message}${e.message_en ? " · " + e.message_en : ""}` : fallback;
}

// ---------------------------------------------------------------- step 1: sign in
function signInForm(note) {
  showStep("sign-in");
  $("enrolled-note").hidden = !note;
  if (note) { $("enrolled-as").textContent = note; $("enrolled-as-en").textContent = note; }
  $("password").value = "";
  $("user").focus();
}

function throttled(seconds) {
  clearInterval(waitTimer);
  let left = seconds;
  const tick = () => {
    if (left <= 0) {
      clearInterval(waitTimer);
      $("submit").disabled = false;
      $("error").textContent = "";
      return;
    }
    $("submit").disabled = true;
    $("error").textContent = `尝试次数过多，请 ${left} 秒后再试 · Too many attempts, try again in ${left} s`;
    left -= 1;
  };
  tick();
  waitTimer = setInterval(tick, 1000);
}

$("form").addEventListener("submit", async e => {
  e.preventDefault();
  const user = $("user").value.trim(), password = $("password").value;
  if (!user || !password) {
    $("error").textContent = "请输入用户名和密码 · Enter your user name and password";
    (user ? $("password") : $("user")).focus();
    return;
  }
  $("submit").disabled = true;
  $("error").textContent = "";
  let answer;
  try {
    answer = await send("/api/auth/login", { user, password });
  } catch (err) {
    $("submit").disabled = false;
    $("error").textContent = "网络不通，请稍后重试 · Network problem, please retry";
    return;
  }
  const { r, data } = answer;
  $("submit").disabled = false;
  if (r.status === 429) {
    const after = parseInt(r.headers.get("Retry-After") || "", 10)
      || parseInt(((data.error && data.error.message) || "").replace(/\D+/g, " ").trim(), 10) || 30;
    $("password").value = "";
    return throttled(after);
  }
  if (!data.ok) {
    if (data.error && data.error.code === "bad_login") {
      $("error").textContent = "用户名或密码错误 · Wrong user name or password";
    } else {
      say("error", data.error, "登录失败，请重试 · Could not sign in, please retry");
    }
    $("password").value = "";
    $("password").focus();
    return;
  }
  session.csrf = data.csrf;
  session.principal = data.principal;
  signedIn(data.principal);
});

// ---------------------------------------------------------------- step 2: who, and enrol
// Where a page sent the person to sign in (``/login?next=/admin/…``): only this hall's paths.
function nextPage() {
  const next = new URLSearchParams(location.search).get("next") || "";
  return /^\/(?![/\\])/.test(next) ? next : null;
}

function signedIn(who) {
  const next = nextPage();
  if (next && who.kind === "user") return location.replace(next);
  if (who.kind === "user" && who.roles.includes("admin")) return enrolStep(who);
  showStep("me");
  $("me-name").textContent = who.display_name && who.display_name !== who.name
    ? `${who.display_name}（${who.name}）` : who.name;
  $("me-roles").textContent = "角色 Roles：" + who.roles.map(r => ROLE[r] || r).join("、");
  const calls = who.roles.includes("clerk") || who.roles.includes("supervisor");  // windows.operate
  $("me-caller").hidden = !calls;
  $("me-admin").hidden = who.roles.every(r => r === "clerk");           // others read the hall
  (calls ? $("me-caller") : $("me-logout")).focus();
}

async function enrolStep(who) {
  showStep("enrol");
  $("admin-name").textContent = who.display_name || who.name;
  $("enrol-error").textContent = "";
  $("enrol-go").disabled = true;
  $("devices").replaceChildren(el("p", "muted", "正在读取设备… · Loading the devices…"));
  let devices, windows;
  try {
    const [d, w] = await Promise.all(["/api/config/devices", "/api/config/windows"].map(
      path => fetch(path, { cache: "no-store" }).then(r => r.json())));
    if (!d.ok) throw d;
    devices = d.devices;
    windows = new Map(((w.ok && w.windows) || []).map(x => [x.id, x.name || `${x.id}号窗口`]));
  } catch (err) {
    $("devices").replaceChildren();
    return say("enrol-error", err && err.error, "读取设备失败，请刷新重试 · Could not load the devices, reload to retry");
  }
  const byWindow = (a, b) => String(a.window).localeCompare(String(b.window), "zh-CN", { numeric: true });
  const groups = KINDS.map(([kind, zh, en]) => {
    const list = devices.filter(d => d.kind === kind && d.enabled !== false).sort(
      kind === "window_display" || kind === "evaluator" ? byWindow : (a, b) => a.id.localeCompare(b.id, "zh-CN", { numeric: true }));
    if (!list.length) return null;
    const group = el("div", "group"), choices = el("div", "choices");
    group.append(el("h2", "", `${zh} · ${en}`), choices);
    for (const d of list) {
      const label = el("label", "device");
      const radio = el("input");
      radio.type = "radio";
      radio.name = "device";
      radio.value = d.id;
      radio.addEventListener("change", () => chose(d, label));
      const title = kind === "window_display" || kind === "evaluator"
        ? (windows.get(d.window) || `${d.window}号窗口`) : (d.name || d.id);
      label.append(radio, el("span", "title", title));
      if (title !== d.id) label.append(el("span", "id", d.id));
      choices.append(label);
    }
    return group;
  }).filter(Boolean);
  if (!groups.length) {
    return $("devices").replaceChildren(el("p", "error",
      "本厅配置中没有可登记的取号机或屏幕 · The hall's configuration has no kiosk or screen to enrol"));
  }
  $("devices").replaceChildren(...groups);
  const first = $("devices").querySelector("input");
  if (first) first.focus();
}

function chose(device, label) {
  for (const l of document.querySelectorAll(".device.chosen")) l.classList.remove("chosen");
  label.classList.add("chosen");
  $("enrol-go").disabled = false;
  $("enrol-go").textContent = `登记为 ${device.id} · Enrol as ${device.id}`;
  $("enrol-error").textContent = "";
}

$("enrol-go").addEventListener("click", async () => {
  const chosen = document.querySelector("input[name=device]:checked");
  if (!chosen) return;
  $("enrol-go").disabled = true;
  $("enrol-error").textContent = "";
  let answer;
  try {
    answer = await send("/api/auth/enrol", { device: chosen.value });
  } catch (err) {
    $("enrol-go").disabled = false;
    $("enrol-error").textContent = "网络不通，请稍后重试 · Network problem, please retry";
    return;
  }
  const { r, data } = answer;
  if (data.ok) return location.replace(data.page);
  $("enrol-go").disabled = false;
  if (r.status === 401) {                      // the administrator's session ended meanwhile
    session.csrf = null;
    signInForm();
    $("error").textContent = "登录已过期，请重新登录 · Your session ended, please sign in again";
    return;
  }
  say("enrol-error", data.error, "登记失败，请重试 · Could not enrol, please retry");
});

async function logout() {
  try { await send("/api/auth/logout"); } catch (err) { /* signed out here either way */ }
  session.csrf = null;
  session.principal = null;
  $("user").value = "";
  signInForm();
}
$("enrol-logout").addEventListener("click", logout);
$("me-logout").addEventListener("click", logout);
$("me-caller").addEventListener("click", () => { location.href = "/caller"; });   // a clerk goes on
for (const id of ["me-admin", "enrol-admin"]) $(id).addEventListener("click", () => { location.href = "/admin"; });

// ---------------------------------------------------------------- at load
async function start() {
  fetch("/api/board", { cache: "no-store" }).then(r => r.json())
    .then(b => { if (b.name) $("hall").textContent = b.name; }).catch(() => {});
  const status = await loadSession();
  const who = session.principal;
  if (status === 200 && who && who.kind === "user") return signedIn(who);
  signInForm(status === 200 && who && who.kind === "device" ? who.name : "");
}
start();
