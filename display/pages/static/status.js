// The ticket status page (/t/{token}): the ticket's state, pushed; a chime when it is called.
const id = decodeURIComponent(location.pathname.split("/").pop());
const TEXT = { waiting: "等候中", called: "已叫号", serving: "办理中", held: "已挂起",
               done: "已办结", no_show: "已过号", cancelled: "已取消", transferred: "已转办" };
function status(t) {
  if (!t) return;
  $("number").textContent = t.number;
  $("service").textContent = t.service_name;
  $("state").textContent = TEXT[t.state] || t.state;
  const waiting = t.state === "waiting";
  $("ahead").textContent = waiting ? `${t.ahead} 人` : "—";
  if (waiting) {
    const [zh, en] = waitText(t.est_wait_range, t.est_wait_min);
    $("wait").replaceChildren(zh, el("span", "en", en));
  } else {
    $("wait").textContent = "—";
  }
  $("issued").textContent = t.issued_at.slice(11, 16);
  const called = (t.state === "called" || t.state === "serving") && t.window;
  $("called").classList.toggle("show", !!called);
  if (called) $("called").textContent = `请到 ${t.window_name || t.window + "号窗口"} 办理`;
}
function call(c) {
  $("called").textContent = `请到 ${c.window_name || c.window + "号窗口"} 办理`;
  $("called").classList.add("show");
  if (navigator.vibrate) navigator.vibrate([300, 100, 300]);
  chime();
}
// The stream refuses a ticket it does not know (404), and EventSource does not say why nor
// try again: ask the status API whether the ticket exists; if not, say so, else retry.
function unknown() {
  document.body.classList.add("unknown");
  document.getElementById("offline").classList.remove("show");
  document.title = "没有这张票 · No such ticket";
}
function start() {
  const source = follow(`/api/status/${encodeURIComponent(id)}/stream`, { status, call });
  source.addEventListener("error", async () => {
    if (source.readyState !== EventSource.CLOSED) return;   // reconnecting by itself
    try {
      const r = await fetch(`/api/status/${encodeURIComponent(id)}`, { cache: "no-store" });
      if (r.status === 404) return unknown();
    } catch (e) { /* the network is down: try again below */ }
    setTimeout(start, 3000);
  });
}
start();
