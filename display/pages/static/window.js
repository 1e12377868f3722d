// 窗口屏 (/window/{window}): this window's name, services and clerk, and its ticket: called
// (请 A001 到 1号窗口) or being served (办理中), told apart; a paused window says so in large
// type. Pushed; flashes on a call.
const mine = decodeURIComponent(location.pathname.split("/").pop());
const STATES = ["called", "serving", "idle", "paused", "closed"];
function board(b) {
  const w = b.windows.find(x => x.window === mine);
  if (!w) { $("name").textContent = "没有这个窗口 · No such window"; return; }
  const state = windowState(w);
  document.body.classList.remove(...STATES);
  document.body.classList.add(state);
  $("name").textContent = w.name;
  $("services").textContent = (w.services || []).join(" · ");
  $("ticket").textContent = w.ticket || "—";
  const [zh, en] = WINDOW_STATE[state] || [state, ""];
  $("state").textContent = state === "called" ? `请 ${w.ticket} 到 ${w.name} · ${en}` : `${zh} · ${en}`;
  $("clerk-name").textContent = w.clerk_name || "";
  $("staff").textContent = w.staff || "";
}
function call(c) {
  if (c.window !== mine) return;
  $("ticket").textContent = c.ticket;
  const box = $("box");
  box.classList.remove("flash"); void box.offsetWidth; box.classList.add("flash");
  chime();
}
prepareSound();
followSession("/api/stream", { board, call }, { refused: () => showNotEnrolled("/api/stream") });
