// Shared by the hall's pages: server-sent events with a reconnect banner, a chime, helpers.
const STATE = { serving: "办理中", idle: "空闲", paused: "暂停", closed: "未开放" };

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

// Ding-dong with the Web Audio API (no sound file to load); silent where audio is blocked.
let audio;
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
