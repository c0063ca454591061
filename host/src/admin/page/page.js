// The cluster page: this node's view of its cluster, from `GET /status`
// (polled every second) and `GET /watch` (Server-Sent Events, one event per
// leadership change). Plain JavaScript, no framework, no build step; every
// value reaches the DOM through textContent, never as HTML.
"use strict";

const POLL_MS = 1000;
const FETCH_TIMEOUT_MS = 2500;
const TIMELINE_KEPT = 200;
const SYMBOL = { leader: "★", candidate: "◆", follower: "○" };

const $ = (id) => document.getElementById(id);

const state = {
  /** `{tokens, protect_reads}` from `/page/access`. */
  access: { tokens: false, protect_reads: false },
  /** The admin token the operator pasted; never stored. */
  token: "",
  /** The last `/status` report. */
  report: null,
  /** The highest term a watch event told of: older reports are stale. */
  watchTerm: 0,
  /** The leader the last timeline entry named (to mark moves). */
  lastLeader: undefined,
  /** When this page last saw each peer alive (ms since the epoch). */
  seenAlive: new Map(),
  /** The lease as last sampled: ms left, at performance.now(). */
  lease: null,
  /** Closes the current `/watch` subscription. */
  stopWatching: null,
  polling: false,
};

function headers() {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

function roleText(role) {
  return `${SYMBOL[role] || "?"} ${role}`;
}

function clock(date) {
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

function setConnection(what, text) {
  const el = $("connection");
  el.dataset.state = what;
  el.textContent = text;
}

// ---- /status ---------------------------------------------------------

async function poll() {
  if (state.polling) return;
  state.polling = true;
  try {
    const res = await fetch("/status", {
      headers: headers(),
      cache: "no-store",
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    if (res.status === 401 || res.status === 403) {
      showError(res.status === 401
        ? "This node's reads need an admin token (protect-reads): paste one above."
        : "This token is not accepted by this node.");
      return;
    }
    if (!res.ok) {
      showError(`GET /status answered ${res.status}: ${(await res.text()).trim()}`);
      return;
    }
    const report = await res.json();
    showError("");
    showReport(report);
  } catch (e) {
    showError(`This node does not answer (${e.name === "TimeoutError" ? "timed out" : e.message}).`);
    setConnection("lost", "not answering");
  } finally {
    state.polling = false;
  }
}

function showError(text) {
  const el = $("status-error");
  el.textContent = text;
  el.hidden = !text;
}

function showReport(r) {
  state.report = r;
  document.title = `Tenure · ${r.node_id} · ${r.leader ? `${r.leader} leads` : "no leader"}`;
  $("cluster").textContent = r.cluster_id;
  $("node").textContent = r.node_id;
  // A report asked for before the last watch event may be older than it.
  if (r.term >= state.watchTerm) {
    showLeader(r.leader, r.term, r.role);
  }
  $("quorum").textContent = `${r.quorum} of ${r.members.length}`;
  $("gap").textContent = `${r.max_leader_gap_ms} ms`;
  $("protocol").textContent = `version ${r.protocol_version} · ${r.protocol_sha256.slice(0, 12)}`;
  $("plugin").textContent = r.plugin
    ? `${r.plugin.name} · sha256 ${r.plugin.sha256.slice(0, 12)}`
    : "none";
  state.lease = r.role === "leader" && typeof r.lease_remaining_ms === "number"
    ? { ms: r.lease_remaining_ms, at: performance.now() }
    : null;
  const meter = $("lease-meter");
  if (state.lease) meter.max = Math.max(Number(meter.max), state.lease.ms);
  tickLease();
  showMembers(r);
  showActions();
}

function showLeader(leader, term, role) {
  const el = $("leader");
  el.dataset.leader = leader || "";
  el.textContent = leader ? `★ ${leader}` : "none known (election under way?)";
  $("term").textContent = String(term);
  $("role").textContent = roleText(role);
}

function tickLease() {
  const text = $("lease");
  const meter = $("lease-meter");
  const r = state.report;
  if (!r) return;
  if (r.role !== "leader") {
    text.textContent = "— (only the leader holds one)";
    meter.hidden = true;
    return;
  }
  if (!state.lease) {
    text.textContent = "none: no majority heard lately";
    meter.hidden = true;
    return;
  }
  const age = performance.now() - state.lease.at;
  const left = Math.max(0, state.lease.ms - age);
  text.textContent = `${Math.round(left)} ms left (sampled ${Math.round(age)} ms ago)`;
  meter.hidden = false;
  meter.value = left;
}

function showMembers(r) {
  const now = Date.now();
  const alive = new Set(r.peers);
  for (const peer of alive) state.seenAlive.set(peer, now);
  const ids = [...new Set([...r.members, ...r.peers, r.node_id])].sort();
  const body = document.createElement("tbody");
  for (const id of ids) {
    const row = body.insertRow();
    row.dataset.node = id;
    const self = id === r.node_id;
    if (self) row.className = "self";
    const cell = (text, cls) => {
      const td = row.insertCell();
      td.textContent = text;
      if (cls) td.className = cls;
    };
    cell(r.members.includes(id) ? id : `${id} (not a voter)`);
    let role;
    if (self) role = r.role;
    else if (id === r.leader) role = "leader";
    else role = alive.has(id) && r.leader ? "follower" : null;
    cell(role ? roleText(role) : "? unknown", role ? `role-${role}` : "");
    if (self) cell("✓ this node", "alive");
    else if (alive.has(id)) cell("✓ alive", "alive");
    else cell("✗ silent", "silent");
    cell(lastContact(r, id, self, alive.has(id), now), "contact");
  }
  $("members").replaceChild(body, $("members").tBodies[0]);
}

/**
 * The "last contact" cell: how long ago the node last heard from `id`
 * directly (`last_heard_ms` in /status, so it is known however late the
 * page opened); from an older node without that figure, when this page
 * last saw `id` alive.
 */
function lastContact(r, id, self, alive, now) {
  if (self) return "—";
  const heard = r.last_heard_ms ? r.last_heard_ms[id] : undefined;
  if (typeof heard === "number") {
    const ago = `${(heard / 1000).toFixed(1)} s ago`;
    // Followers hear of each other through the leader's heartbeats.
    return alive && heard > 2000 ? `${ago} (alive by the leader's word)` : ago;
  }
  if (heard === null) return alive ? "alive by the leader's word; never directly" : "never, since this node started";
  if (alive) return "now";
  if (state.seenAlive.has(id)) return `${((now - state.seenAlive.get(id)) / 1000).toFixed(1)} s ago (seen by this page)`;
  return "not since this page opened";
}

// ---- /watch ----------------------------------------------------------

function onLeadership(data) {
  let change;
  try {
    change = JSON.parse(data);
  } catch {
    return;
  }
  state.watchTerm = Math.max(state.watchTerm, change.term);
  showLeader(change.leader, change.term, change.role);
  const leader = change.leader || "";
  const li = document.createElement("li");
  li.dataset.seq = String(change.seq);
  li.dataset.leader = leader;
  li.dataset.term = String(change.term);
  const moved = state.lastLeader !== undefined && state.lastLeader !== leader;
  if (moved) li.className = "moved";
  const time = document.createElement("time");
  time.textContent = clock(new Date());
  li.append(time);
  const who = leader ? `★ ${leader} leads` : "no leader";
  const was = moved ? ` (was ${state.lastLeader || "none"})` : "";
  const token = change.fencing_token == null ? "" : ` · fencing token ${change.fencing_token}`;
  li.append(`term ${change.term} · ${who}${was} · ${change.node} ${roleText(change.role)}${token}`);
  state.lastLeader = leader;
  addEntry(li);
}

function onLagged(data) {
  let missed = "some";
  try {
    missed = JSON.parse(data).missed;
  } catch { /* keep "some" */ }
  const li = document.createElement("li");
  li.textContent = `${clock(new Date())} missed ${missed} changes (the page fell behind)`;
  addEntry(li);
}

function addEntry(li) {
  const list = $("timeline");
  list.prepend(li);
  while (list.children.length > TIMELINE_KEPT) list.lastElementChild.remove();
}

/** EventSource: reconnects by itself; it cannot send a token. */
function watchWithEventSource() {
  const source = new EventSource("/watch");
  source.addEventListener("open", () => setConnection("live", "live"));
  source.addEventListener("error", () => setConnection("lost", "watch lost, reconnecting…"));
  source.addEventListener("leadership", (e) => onLeadership(e.data));
  source.addEventListener("lagged", (e) => onLagged(e.data));
  return () => source.close();
}

/** The same stream through fetch, which can send `Authorization`. */
function watchWithFetch() {
  const stop = new AbortController();
  const run = async () => {
    while (!stop.signal.aborted) {
      try {
        const res = await fetch("/watch", { headers: headers(), signal: stop.signal });
        if (!res.ok) throw new Error(`GET /watch answered ${res.status}`);
        setConnection("live", "live");
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            dispatch(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
        setConnection("lost", "watch lost, reconnecting…");
      } catch (e) {
        if (stop.signal.aborted) return;
        setConnection("lost", `watch: ${e.message}; retrying…`);
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  };
  run();
  return () => stop.abort();
}

/** One Server-Sent Event block. */
function dispatch(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (event === "leadership") onLeadership(data.join("\n"));
  else if (event === "lagged") onLagged(data.join("\n"));
}

function watch() {
  if (state.stopWatching) state.stopWatching();
  state.stopWatching = state.access.protect_reads ? watchWithFetch() : watchWithEventSource();
}

// ---- operator actions --------------------------------------------------

function showActions() {
  const r = state.report;
  const off = $("actions-off");
  if (!state.access.tokens) {
    off.textContent = "Off: this admin endpoint has no [admin-auth] tokens, so this page offers "
      + "no actions (anyone who reaches it could use them). Use the tenure CLI on the node.";
    $("actions").hidden = true;
    return;
  }
  $("actions").hidden = false;
  const leads = r && r.role === "leader";
  off.textContent = !state.token
    ? "Paste an admin token above to act."
    : leads ? "This node leads: it can step down or hand over."
      : "This node does not lead: open the leader's admin page to step down or transfer.";
  $("step-down").disabled = !state.token || !leads;
  $("transfer").disabled = !state.token || !leads;
  const select = $("transfer-to");
  const others = r ? r.members.filter((m) => m !== r.node_id) : [];
  if ([...select.options].map((o) => o.value).join() !== others.join()) {
    select.replaceChildren(...others.map((m) => new Option(m, m)));
  }
}

/** Asks the operator through the dialog; resolves to true on "yes". */
function confirmAction(text) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  return new Promise((resolve) => {
    const done = (answer) => {
      $("confirm-yes").onclick = $("confirm-no").onclick = dialog.oncancel = null;
      dialog.close();
      resolve(answer);
    };
    $("confirm-yes").onclick = () => done(true);
    $("confirm-no").onclick = () => done(false);
    dialog.oncancel = () => done(false);
    dialog.showModal();
    $("confirm-no").focus();
  });
}

async function act(question, path) {
  if (!(await confirmAction(question))) return;
  const result = $("action-result");
  result.textContent = `POST ${path} …`;
  try {
    const res = await fetch(path, {
      method: "POST",
      headers: headers(),
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS * 4),
    });
    result.textContent = `${res.status}: ${(await res.text()).trim()}`;
  } catch (e) {
    result.textContent = `POST ${path} failed: ${e.message}`;
  }
  poll();
}

// ---- start -------------------------------------------------------------

async function start() {
  try {
    const res = await fetch("/page/access", { cache: "no-store" });
    if (res.ok) state.access = await res.json();
  } catch { /* assume no tokens: no actions offered */ }
  if (state.access.tokens) {
    $("access-note").hidden = false;
    $("access-text").textContent = state.access.protect_reads
      ? "This node's reads need an admin token (protect-reads): paste one to see its data."
      : "Operator actions need an admin token.";
  }
  $("token").addEventListener("change", (e) => {
    state.token = e.target.value.trim();
    if (state.access.protect_reads) watch();
    poll();
    showActions();
  });
  $("step-down").addEventListener("click", () => {
    const r = state.report;
    act(`Make ${r.node_id}, leader of term ${r.term}, step down? The cluster elects another leader.`,
      "/step-down");
  });
  $("transfer").addEventListener("click", () => {
    const to = $("transfer-to").value;
    if (to) act(`Hand leadership from ${state.report.node_id} to ${to}?`, `/transfer?to=${encodeURIComponent(to)}`);
  });
  showActions();
  watch();
  poll();
  setInterval(poll, POLL_MS);
  setInterval(tickLease, 100);
}

start();
