// 综合屏 (/screen): the board and each call, pushed; a notice when the screen is not enrolled.
const $ = id => document.getElementById(id);
let calls = 0;
function board(b) {
  $("hall").textContent = b.hall || $("hall").textContent;
  $("windows").replaceChildren(...b.windows.map(w => {
    const d = el("div", "win " + w.state);
    d.dataset.window = w.window;
    d.append(el("div", "name", w.name), el("div", "t", w.ticket || ""),
             el("div", "muted", STATE[w.state] || w.state));
    return d;
  }));
  $("services").replaceChildren(...b.services.map(s => {
    const r = document.createElement("tr");
    r.append(el("td", "", s.name), el("td", "n", s.waiting),
             el("td", "n", s.waiting ? s.est_wait_min + "分" : ""));
    return r;
  }));
  $("recent").replaceChildren(...b.recent_calls.slice().reverse().map(c =>
    el("li", "", `${c.ticket} → ${c.window_name || c.window + "号窗口"}`)));
}
function call(c) {
  calls += 1;
  document.body.dataset.calls = calls;
  $("call-text").textContent = c.text;
  const box = $("call");
  box.classList.remove("flash"); void box.offsetWidth; box.classList.add("flash");
  const w = document.querySelector(`.win[data-window="${CSS.escape(c.window)}"]`);
  if (w) { w.classList.remove("flash"); void w.offsetWidth; w.classList.add("flash"); }
  chime();
}
followSession("/api/stream", { board, call }, { refused: () => showNotEnrolled("/api/stream") });
setInterval(() => $("clock").textContent = new Date().toLocaleString("zh-CN"), 1000);
