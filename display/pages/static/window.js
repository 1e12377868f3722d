// 窗口屏 (/window/{window}): the ticket this window serves, pushed; flashes on a call.
const $ = id => document.getElementById(id);
const mine = decodeURIComponent(location.pathname.split("/").pop());
function board(b) {
  const w = b.windows.find(x => x.window === mine);
  if (!w) { $("name").textContent = "没有这个窗口"; return; }
  $("name").textContent = w.name;
  $("ticket").textContent = w.ticket || "—";
  $("state").textContent = STATE[w.state] || w.state;
}
function call(c) {
  if (c.window !== mine) return;
  $("ticket").textContent = c.ticket;
  const box = $("box");
  box.classList.remove("flash"); void box.offsetWidth; box.classList.add("flash");
  chime();
}
followSession("/api/stream", { board, call }, { refused: () => showNotEnrolled("/api/stream") });
