// 综合屏 (/screen): the board and each call, pushed; the hall's own time; the next numbers of
// each service, the missed numbers (过号) and the hall's notices, scrolling; a notice when the
// screen is not enrolled.
let calls = 0, noticesShown = "";
const flashing = new Map();                      // window → until when its tile flashes (ms)
const NO_NOTICE = "请留意屏幕和广播叫号，过号请到服务台咨询 · Please watch for your number; "
  + "if it was missed, ask at the service desk";
function board(b) {
  setHallClock(b);
  tick();
  $("hall").textContent = b.hall || $("hall").textContent;
  $("windows").replaceChildren(...b.windows.map(w => {
    const state = windowState(w);
    const d = el("div", "win " + state + ((flashing.get(w.window) || 0) > Date.now() ? " flash" : ""));
    d.dataset.window = w.window;
    d.append(el("div", "name", w.name), el("div", "t", w.ticket || "—"),
             el("div", "s", WINDOW_STATE[state] ? WINDOW_STATE[state][0] : state));
    return d;
  }));
  $("services").replaceChildren(...b.services.map(s => {
    const r = document.createElement("tr");
    r.dataset.service = s.service;
    const next = el("td", "next");
    next.append(...(s.next || []).slice(0, 3).map(n => el("span", "", n)));
    r.append(el("td", "", s.name), el("td", "n", s.waiting), next);
    return r;
  }));
  const missed = b.missed || [];
  $("missed").replaceChildren(...(missed.length ? missed.map(n => el("span", "", n))
                                                 : [el("span", "none", "无 · None")]));
  const last = b.recent_calls[b.recent_calls.length - 1];
  if (!calls && last && last.text) $("call-text").textContent = last.text;   // the latest, on opening
  $("recent").replaceChildren(...b.recent_calls.slice(-6).reverse().map(c =>
    el("li", "", `${c.ticket} → ${c.window_name || c.window + "号窗口"}`)));
  const notices = (b.notices || []).map(n => n.text_en ? `${n.text} · ${n.text_en}` : n.text);
  const text = notices.length ? notices.join("　　◆　　") : NO_NOTICE;
  if (text !== noticesShown) {                   // unchanged: the scrolling goes on undisturbed
    noticesShown = text;
    // twice, side by side: the ticker moves by one copy and starts again where it was
    $("notices").replaceChildren(el("span", "", text), el("span", "", text));
    $("notices").classList.toggle("long", text.length > 60);
  }
}
function call(c) {
  calls += 1;
  document.body.dataset.calls = calls;
  $("call-text").textContent = c.text;
  const box = $("call");
  box.classList.remove("flash"); void box.offsetWidth; box.classList.add("flash");
  flashing.set(c.window, Date.now() + 5000);      // the board redrawn meanwhile flashes it too
  const w = document.querySelector(`.win[data-window="${CSS.escape(c.window)}"]`);
  if (w) { w.classList.remove("flash"); void w.offsetWidth; w.classList.add("flash"); }
  chime();
}
function tick() {
  $("date").textContent = hallTime({ month: "long", day: "numeric", weekday: "short" });
  $("time").textContent = hallTime({ hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
prepareSound();
followSession("/api/stream", { board, call }, { refused: () => showNotEnrolled("/api/stream") });
tick();
setInterval(tick, 1000);
