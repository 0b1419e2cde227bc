/**
 * The dashboard: one self-contained, read-only page served by the admin server (no external assets). It draws the
 * service graph (who may call whom, coloured by mTLS mode, with live proxies marked), lists proxies (revision,
 * ACK/NACK, certificate expiry) and rejected revisions with their diagnostics, and answers an explain form. Data
 * comes from /status, /api/graph and /api/explain, refreshed every few seconds. On loopback those reads need no
 * credential; when the admin port is exposed they answer 401 and the page asks for the admin credential once, keeps
 * it in sessionStorage (this tab only) and sends it as `Authorization: Bearer` (never in a URL or a cookie).
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Chancery</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
  header { background: #1d2330; color: #fff; padding: 10px 20px; display: flex; gap: 24px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  main { display: grid; grid-template-columns: 1.4fr 1fr; gap: 16px; padding: 16px 20px; }
  section { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: 12px 16px; }
  h2 { font-size: 15px; margin: 0 0 8px; }
  table { border-collapse: collapse; width: 100%; font-size: 13px; }
  td, th { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eef0f3; vertical-align: top; }
  .ok { color: #17803d; } .warn { color: #b45309; } .bad { color: #b91c1c; } .muted { color: #6b7280; }
  code, pre { font: 12px/1.4 ui-monospace, monospace; }
  pre { white-space: pre-wrap; background: #f3f4f6; padding: 8px; border-radius: 4px; margin: 8px 0 0; }
  form { display: grid; grid-template-columns: auto 1fr; gap: 6px 8px; align-items: center; }
  svg text { font: 12px system-ui, sans-serif; }
  .legend span { margin-right: 12px; font-size: 12px; }
</style>
</head>
<body>
<header><h1>Chancery</h1><span id="revision" class="muted">loading...</span><span id="source" class="muted"></span>
  <form id="login" hidden><label>admin credential (admin.token in the state directory)
    <input type="password" autocomplete="off" required></label> <button type="submit">Use</button></form>
</header>
<main>
  <section style="grid-row: span 2">
    <h2>Service graph</h2>
    <div class="legend"><span class="ok">&#9644; mTLS STRICT</span><span class="warn">&#9644; PERMISSIVE</span><span class="bad">&#9644; plaintext</span><span>&#9679; proxy connected</span></div>
    <svg id="graph" width="100%" viewBox="0 0 760 520" role="img" aria-label="service graph"></svg>
  </section>
  <section>
    <h2>Proxies</h2>
    <table id="proxies"><thead><tr><th>proxy</th><th>state</th><th>revision</th><th>last NACK</th><th>certificate expires</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Revisions</h2>
    <table id="revisions"><thead><tr><th>revision</th><th>status</th><th>at</th><th>details</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Explain a request</h2>
    <form id="explain">
      <label for="from">from</label><select id="from" name="from"></select>
      <label for="to">to</label><input id="to" name="to" placeholder="host[:port]">
      <label for="method">method</label><input id="method" name="method" value="GET">
      <label for="path">path</label><input id="path" name="path" value="/">
      <span></span><button type="submit">Explain</button>
    </form>
    <pre id="answer" class="muted">ALLOW or DENY, and the rule that decides.</pre>
  </section>
</main>
<script>
const esc = (s) => String(s ?? '').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const short = (r) => (!r ? '-' : r.startsWith('dir:') ? r : r.slice(0, 12));
const colour = (m) => (m === 'STRICT' ? '#17803d' : m === 'PERMISSIVE' ? '#b45309' : '#b91c1c');

function drawGraph(graph, proxies) {
  const svg = document.getElementById('graph');
  // Requests from outside the mesh arrive at gateways: one more node for their callers.
  const names = graph.edges.some((e) => e.from === 'outside') ? ['outside', ...graph.workloads] : graph.workloads;
  const W = 760, H = 520, R = Math.min(W, H) / 2 - 90;
  const pos = new Map(names.map((n, i) => {
    const a = (2 * Math.PI * i) / Math.max(1, names.length) - Math.PI / 2;
    return [n, { x: W / 2 + R * Math.cos(a), y: H / 2 + R * Math.sin(a) }];
  }));
  const live = new Map(proxies.map((p) => [p.id, p]));
  let out = '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#6b7280"/></marker></defs>';
  for (const e of graph.edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
    const x1 = a.x + (dx / len) * 34, y1 = a.y + (dy / len) * 34, x2 = b.x - (dx / len) * 34, y2 = b.y - (dy / len) * 34;
    const label = e.port + ' ' + e.methods.join(',') + ' ' + e.paths.join(',') + (e.except.length ? ' except ' + e.except.join(',') : '');
    out += '<g class="edge" data-from="' + esc(e.from) + '" data-to="' + esc(e.to) + '"><title>' + esc(e.from + ' -> ' + e.to + ': ' + label + ' (' + e.mtls + ')' + (e.flags.length ? ' ! ' + e.flags.join('; ') : '')) + '</title>' +
      '<line x1="' + x1 + '" y1="' + y1 + '" x2="' + x2 + '" y2="' + y2 + '" stroke="' + colour(e.mtls) + '" stroke-width="2" marker-end="url(#arrow)"' + (e.flags.length ? ' stroke-dasharray="6 3"' : '') + '/>' +
      '<text x="' + ((x1 + x2) / 2) + '" y="' + ((y1 + y2) / 2 - 4) + '" text-anchor="middle" fill="#374151">' + esc(label) + '</text></g>';
  }
  for (const n of names) {
    const p = pos.get(n), proxy = live.get(n);
    const state = !proxy || !proxy.connected ? '#9ca3af' : proxy.upToDate ? '#17803d' : '#b45309';
    const dot = n === 'outside' ? '' : '<circle cx="' + (p.x + 22) + '" cy="' + (p.y - 22) + '" r="6" fill="' + state + '"><title>' + (proxy ? (proxy.connected ? (proxy.upToDate ? 'in sync' : 'behind') : 'disconnected') : 'no proxy connected') + '</title></circle>';
    out += '<g class="node" data-id="' + esc(n) + '"><circle cx="' + p.x + '" cy="' + p.y + '" r="30" fill="#eef2ff" stroke="#4f46e5"/>' + dot +
      '<text x="' + p.x + '" y="' + (p.y + 46) + '" text-anchor="middle">' + esc(n) +
      (graph.registered?.[n] ? ' (registered)' : '') + '</text></g>';
  }
  svg.innerHTML = out;
}

function render(status, graph) {
  document.getElementById('revision').textContent = 'serving ' + short(status.revision.current);
  document.getElementById('source').textContent = status.controlPlane.source;
  const certs = new Map((status.certificates?.workloads ?? []).map((c) => [c.identity, c]));
  document.querySelector('#proxies tbody').innerHTML = status.proxies.map((p) => {
    const nacks = Object.entries(p.types).filter(([, t]) => t.lastNack).map(([k, t]) => k + ': ' + t.lastNack.message);
    const cert = certs.get(p.identity);
    const state = !p.connected ? '<span class="muted">disconnected</span>' : p.upToDate ? '<span class="ok">in sync</span>' : '<span class="warn">behind</span>';
    const reg = p.registered ? ' <span class="muted">registered (' + esc(p.registered.group) + ')</span>' : '';
    return '<tr><td>' + esc(p.id) + reg +
      '</td><td>' + state + '</td><td><code>' + esc(short(p.revision ?? p.lastSynced?.revision)) + '</code></td><td class="' + (nacks.length ? 'bad' : 'muted') + '">' + esc(nacks.join('; ') || '-') + '</td><td>' + esc(cert ? cert.notAfter : '-') + '</td></tr>';
  }).join('') || '<tr><td colspan="5" class="muted">no proxy has connected yet</td></tr>';
  document.querySelector('#revisions tbody').innerHTML = status.revisions.slice(0, 8).map((r) => {
    const errors = r.diagnostics.filter((d) => d.severity === 'error').map((d) => (d.location ? d.location.file + ':' + d.location.line + ':' + d.location.column + ' ' : '') + d.code + ' ' + d.message);
    const c = r.convergence;
    const details = r.status === 'rejected' ? '<span class="bad">' + errors.map(esc).join('<br>') + '</span>' : c ? c.synced + '/' + c.connected + ' proxies' + (c.ms !== undefined ? ', converged in ' + c.ms + ' ms' : '') : '';
    return '<tr class="rev-' + r.status + '"><td><code>' + esc(short(r.revision)) + '</code></td><td class="' + (r.status === 'accepted' ? 'ok' : 'bad') + '">' + r.status + '</td><td>' + esc(r.at) + '</td><td>' + details + '</td></tr>';
  }).join('');
  const from = document.getElementById('from');
  if (from.options.length !== graph.workloads.length) from.innerHTML = graph.workloads.map((w) => '<option>' + esc(w) + '</option>').join('');
  drawGraph(graph, status.proxies);
}

const CREDENTIAL = 'chancery-admin-credential';
async function get(url) {
  const c = sessionStorage.getItem(CREDENTIAL);
  const r = await fetch(url, { headers: c ? { authorization: 'Bearer ' + c } : {} });
  if (r.status === 401) {
    document.getElementById('login').hidden = false;
    throw new Error('the admin credential is needed');
  }
  return r;
}

document.getElementById('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(CREDENTIAL, ev.target.querySelector('input').value.trim());
  ev.target.hidden = true;
  refresh();
});

async function refresh() {
  try {
    const json = (url) => get(url).then((r) => r.json());
    const [status, graph] = await Promise.all([json('/status'), json('/api/graph')]);
    render(status, graph);
  } catch (e) {
    document.getElementById('revision').textContent = 'control plane unreachable: ' + e.message;
  }
}

document.getElementById('explain').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const q = new URLSearchParams(new FormData(ev.target));
  const r = await get('/api/explain?' + q).catch((e) => ({ ok: false, json: () => ({ error: e.message }) }));
  const body = await r.json();
  document.getElementById('answer').className = '';
  document.getElementById('answer').textContent = r.ok ? body.text : 'error: ' + body.error;
});

refresh();
setInterval(refresh, 3000);
</script>
</body>
</html>
`;
