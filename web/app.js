// SegWAN dashboard: a few views over the controller's REST API (same origin, /api/v1).
// Signed in with a bearer token (operator or tenant), kept in this tab's sessionStorage.
import uPlot from './vendor/uPlot.esm.js';

const main = document.getElementById('main');
let who = null;          // {operator, tenant}
let stopView = () => {}; // the current view's timers

// ---- API ---------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code;
    this.field = e.field || null;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem('segwan-token') || ''}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    if (res.status === 401 && path !== '/whoami') signOut();
    throw new ApiError(res.status, data);
  }
  return data;
}

// ---- small DOM helpers ---------------------------------------------------------------------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else if (v !== false && v != null) el.setAttribute(k, v);
  }
  for (const c of children.flat()) el.append(c instanceof Node ? c : document.createTextNode(c ?? ''));
  return el;
}
const fmt = (v, d = 3) => (v == null ? '–' : Number(v).toFixed(d));
const pill = (ok, yes, no) => h('span', { class: `pill ${ok ? 'good' : 'bad'}` }, ok ? yes : no);

// A field with its error line; `name` is the API's field path ("sites[0].device").
function field(label, name, input) {
  input.name = name;
  return h('label', {}, label, input, h('small', { class: 'error', 'data-for': name }));
}

// Shows an API error next to the field it names (or at the form's top); the inputs keep what
// the user typed.
function showError(form, err) {
  for (const e of form.querySelectorAll('.error')) e.textContent = '';
  for (const e of form.querySelectorAll('.invalid')) e.classList.remove('invalid');
  const top = form.querySelector('.form-error');
  const slot = err.field && form.querySelector(`[data-for="${CSS.escape(err.field)}"]`);
  if (slot) {
    slot.textContent = err.message;
    form.querySelector(`[name="${CSS.escape(err.field)}"]`)?.classList.add('invalid');
    top.textContent = '';
  } else {
    top.textContent = err.field ? `${err.field}: ${err.message}` : err.message;
  }
}

function submitter(form, action) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      await action();
      for (const e of form.querySelectorAll('.error, .form-error')) e.textContent = '';
    } catch (err) {
      showError(form, err);
    } finally {
      button.disabled = false;
    }
  });
}

// ---- views ---------------------------------------------------------------------------------
async function signIn() {
  main.replaceChildren();
  const input = h('input', { type: 'password', autocomplete: 'off', placeholder: 'operator or tenant token' });
  const form = h('form', {}, h('h1', {}, 'Sign in'), field('Token', 'token', input),
    h('div', { class: 'form-error' }), h('button', { type: 'submit' }, 'Sign in'));
  submitter(form, async () => {
    sessionStorage.setItem('segwan-token', input.value.trim());
    try {
      who = await api('GET', '/whoami');
    } catch (e) {
      sessionStorage.removeItem('segwan-token');
      throw new ApiError(401, { error: { message: 'unknown token', field: 'token' } });
    }
    location.hash = who.operator ? '#/devices' : '#/slices';
    route();
  });
  main.append(form);
  input.focus();
}

function signOut() {
  sessionStorage.removeItem('segwan-token');
  who = null;
  location.hash = '#/signin';
}

async function devicesView() {
  const devices = await api('GET', '/devices');
  const rows = devices.map((d) => h('tr', { 'data-device': d.id },
    h('td', {}, d.id), h('td', {}, pill(d.connected, 'connected', 'disconnected')),
    h('td', {}, pill(d.enabled, 'enabled', 'disabled')), h('td', {}, d.slice_mode || '–'),
    h('td', {}, d.locator || '–'), h('td', {}, d.capabilities.join(', ')),
    h('td', {}, d.interfaces.filter((i) => i.role).map((i) => `${i.name} (${i.role})`).join(', ')),
    h('td', {}, who.operator ? h('button', {
      class: 'secondary',
      onclick: async () => { await api('POST', `/devices/${d.id}/${d.enabled ? 'disable' : 'enable'}`); route(); },
    }, d.enabled ? 'Disable' : 'Enable') : '')));
  main.replaceChildren(h('h1', {}, 'Devices'), h('section', {}, h('table', {},
    h('tr', {}, ['Device', 'Connection', 'State', 'Slice mode', 'Locator', 'Capabilities', 'Interfaces', ''].map((t) => h('th', {}, t))),
    rows)));
}

async function tenantsView() {
  const tenants = await api('GET', '/tenants');
  const name = h('input', { placeholder: 'acme' });
  const out = h('div');
  const form = h('form', {}, h('h2', {}, 'New tenant'), field('Name', 'name', name),
    h('div', { class: 'form-error' }), h('button', { type: 'submit' }, 'Create tenant'), out);
  submitter(form, async () => {
    const t = await api('POST', '/tenants', { name: name.value.trim() });
    out.replaceChildren(h('p', {}, `Token of ${t.name} (shown once):`), h('div', { class: 'token', id: 'new-token' }, t.token));
    name.value = '';
    list.replaceChildren(...(await api('GET', '/tenants')).map(tenantRow));
  });
  const tenantRow = (t) => h('tr', {}, h('td', {}, t.id), h('td', {}, t.name), h('td', {}, t.created));
  const list = h('tbody', {}, tenants.map(tenantRow));
  main.replaceChildren(h('h1', {}, 'Tenants'),
    h('section', {}, h('table', {}, h('tr', {}, h('th', {}, 'Id'), h('th', {}, 'Name'), h('th', {}, 'Created')), list)), form);
}

async function slicesView() {
  const [slices, devices, tenants] = await Promise.all([api('GET', '/slices'), api('GET', '/devices'),
    who.operator ? api('GET', '/tenants') : Promise.resolve([])]);
  const rows = slices.map((s) => h('tr', { 'data-slice': s.id },
    h('td', {}, s.id), h('td', {}, s.name), h('td', {}, s.tenant),
    h('td', {}, s.sites.map((x) => `${x.device}:${x.interface}`).join(', ')),
    h('td', {}, s.paths.map((p) => `${p.from}→${p.to} via ${p.waypoints.join(', ') || 'direct'}`).join('; ') || 'direct'),
    h('td', {}, Object.entries(s.edges).map(([d, e]) => h('div', {}, `${d}: `,
      h('span', { class: `pill ${e.state === 'applied' ? 'good' : e.state === 'pending' ? 'muted' : 'bad'}`, title: e.error || '' }, e.state)))),
    h('td', {}, h('button', { class: 'danger', onclick: () => del(`/slices/${s.id}`) }, 'Delete'))));
  main.replaceChildren(h('h1', {}, 'Slices'), h('section', {}, slices.length ? h('table', {},
    h('tr', {}, ['Id', 'Name', 'Tenant', 'Sites', 'Paths', 'On the edges', ''].map((t) => h('th', {}, t))), rows)
    : h('p', { class: 'muted' }, 'No slices yet.')), sliceForm(devices, tenants));
}

// The new-slice form: sites are (device, LAN interface, optional IPv4 gateway) rows; paths
// pin a direction through waypoint SIDs.
function sliceForm(devices, tenants) {
  const name = h('input', { placeholder: 'blue' });
  const tenant = h('select', {}, tenants.map((t) => h('option', { value: t.id }, `${t.id} ${t.name}`)));
  const sites = h('div');
  const paths = h('div');
  const deviceSelect = () => h('select', {}, h('option', { value: '' }, '–'), devices.map((d) => h('option', { value: d.id }, d.id)));
  const addSite = () => {
    const i = sites.children.length;
    const dev = deviceSelect();
    const ifc = h('select', {});
    dev.addEventListener('change', () => {
      const d = devices.find((x) => x.id === dev.value);
      ifc.replaceChildren(...(d ? d.interfaces.filter((x) => x.role === 'lan' || !x.role) : [])
        .filter((x) => x.name !== 'lo').map((x) => h('option', { value: x.name }, x.name)));
    });
    sites.append(h('div', { class: 'row site' }, field(`Site ${i + 1} device`, `sites[${i}].device`, dev),
      field('LAN interface', `sites[${i}].interface`, ifc),
      field('IPv4 gateway (table mode)', `sites[${i}].nexthop4`, h('input', { placeholder: 'optional' }))));
  };
  const addPath = () => {
    const i = paths.children.length;
    paths.append(h('div', { class: 'row path' }, field('From', `paths[${i}].from`, deviceSelect()),
      field('To', `paths[${i}].to`, deviceSelect()),
      field('Waypoint SIDs (comma separated)', `paths[${i}].waypoints`, h('input', { placeholder: 'fc00:0:1::e' }))));
  };
  addSite();
  addSite();
  const form = h('form', { id: 'slice-form' }, h('h2', {}, 'New slice'),
    h('div', { class: 'row' }, field('Name', 'name', name), who.operator ? field('Tenant', 'tenant', tenant) : ''),
    sites, h('button', { type: 'button', class: 'secondary', onclick: addSite }, 'Add site'), ' ',
    paths, h('button', { type: 'button', class: 'secondary', onclick: addPath }, 'Pin a path'),
    h('div', { class: 'form-error' }), h('p', {}, h('button', { type: 'submit' }, 'Create slice')));
  submitter(form, async () => {
    const body = { name: name.value.trim(), sites: [], paths: [] };
    if (who.operator) body.tenant = tenant.value;
    for (const row of sites.children) {
      const [d, i, n] = row.querySelectorAll('select, input');
      if (!d.value) continue;
      body.sites.push({ device: d.value, interface: i.value, ...(n.value.trim() ? { nexthop4: n.value.trim() } : {}) });
    }
    for (const row of paths.children) {
      const [from, to, w] = row.querySelectorAll('select, input');
      if (!from.value && !to.value) continue;
      body.paths.push({ from: from.value, to: to.value, waypoints: w.value.split(',').map((x) => x.trim()).filter(Boolean) });
    }
    await api('POST', '/slices', body);
    route();
  });
  return form;
}

async function del(path) {
  if (!confirm(`Delete ${path.split('/').pop()}? This cannot be undone.`)) return;
  try {
    await api('DELETE', path);
    route();
  } catch (e) {
    alert(e.message);
  }
}

async function sessionsView() {
  const [sessions, slices] = await Promise.all([api('GET', '/delay-sessions'), api('GET', '/slices')]);
  const rows = sessions.map((s) => h('tr', { 'data-session': s.id },
    h('td', {}, h('a', { href: `#/sessions/${s.id}` }, s.id)), h('td', {}, s.slice),
    h('td', {}, `${s.sender} → ${s.reflector}`), h('td', {}, `${s.interval_ms} ms, ${s.timestamp_format}, ${s.reflector_mode}${s.authenticated ? ', HMAC' : ''}${s.engine && s.engine !== 'auto' ? `, ${s.engine}` : ''}`),
    h('td', {}, s.running ? pill(true, 'running', '') : h('span', { class: 'pill muted' }, 'stopped')),
    h('td', {}, s.error ? h('span', { class: 'error' }, s.error) : ''),
    h('td', {}, h('button', { class: 'secondary', onclick: async () => { await api('POST', `/delay-sessions/${s.id}/${s.running ? 'stop' : 'start'}`); route(); } }, s.running ? 'Stop' : 'Start'), ' ',
      h('button', { class: 'danger', onclick: () => del(`/delay-sessions/${s.id}`) }, 'Delete'))));
  main.replaceChildren(h('h1', {}, 'Delay sessions'), h('section', {}, sessions.length ? h('table', {},
    h('tr', {}, ['Id', 'Slice', 'Sender → reflector', 'Probing', 'State', 'Problem', ''].map((t) => h('th', {}, t))), rows)
    : h('p', { class: 'muted' }, 'No delay sessions yet.')), sessionForm(slices));
}

// A slice and two of its devices (the second defaults to another one than the first).
function slicePairPicker(slices) {
  const slice = h('select', {}, h('option', { value: '' }, '–'), slices.map((s) => h('option', { value: s.id }, `${s.id} ${s.name}`)));
  const first = h('select');
  const second = h('select');
  slice.addEventListener('change', () => {
    const s = slices.find((x) => x.id === slice.value);
    const devs = s ? [...new Set(s.sites.map((x) => x.device))] : [];
    first.replaceChildren(...devs.map((d) => h('option', { value: d }, d)));
    second.replaceChildren(...devs.map((d) => h('option', { value: d }, d)));
    if (devs.length > 1) second.value = devs[1];
  });
  return [slice, first, second];
}

function sessionForm(slices) {
  const [slice, sender, reflector] = slicePairPicker(slices);
  const interval = h('input', { type: 'number', value: '1000' });
  const format = h('select', {}, h('option', { value: 'ntp' }, 'NTP'), h('option', { value: 'ptp' }, 'PTPv2'));
  const mode = h('select', {}, h('option', { value: 'stateful' }, 'stateful'), h('option', { value: 'stateless' }, 'stateless'));
  const auth = h('select', {}, h('option', { value: 'false' }, 'no'), h('option', { value: 'true' }, 'HMAC-SHA-256'));
  const engine = h('select', {}, h('option', { value: 'auto' }, 'automatic'), h('option', { value: 'ebpf' }, 'eBPF'),
    h('option', { value: 'userspace' }, 'user space'));
  const form = h('form', { id: 'session-form' }, h('h2', {}, 'New delay session'),
    h('div', { class: 'row' }, field('Slice', 'slice', slice), field('Sender', 'sender', sender), field('Reflector', 'reflector', reflector)),
    h('div', { class: 'row' }, field('Interval (ms)', 'interval_ms', interval), field('Timestamps', 'timestamp_format', format),
      field('Reflector mode', 'reflector_mode', mode), field('Authentication', 'authenticated', auth),
      field('Engine', 'engine', engine)),
    h('div', { class: 'form-error' }), h('button', { type: 'submit' }, 'Create and start'));
  submitter(form, async () => {
    const s = await api('POST', '/delay-sessions', {
      slice: slice.value, sender: sender.value, reflector: reflector.value, interval_ms: Number(interval.value),
      timestamp_format: format.value, reflector_mode: mode.value, authenticated: auth.value === 'true',
      engine: engine.value,
    });
    location.hash = `#/sessions/${s.id}`;
  });
  return form;
}

// Loss sessions (alternate marking): one flow of a slice, closed period by period.
async function lossView() {
  const [sessions, slices] = await Promise.all([api('GET', '/loss-sessions'), api('GET', '/slices')]);
  const rows = sessions.map((l) => h('tr', { 'data-loss': l.id },
    h('td', {}, h('a', { href: `#/loss/${l.id}` }, l.id)), h('td', {}, l.slice), h('td', {}, `${l.from} → ${l.to}`),
    h('td', {}, l.family), h('td', {}, `${l.period_ms / 1000} s`),
    h('td', {}, l.last_period ? `${l.last_period.lost} of ${l.last_period.sent} (${(100 * l.last_period.loss_ratio).toFixed(2)}%)` : '–'),
    h('td', {}, l.error ? h('span', { class: 'error' }, l.error) : ''),
    h('td', {}, h('button', { class: 'danger', onclick: () => del(`/loss-sessions/${l.id}`) }, 'Delete'))));
  main.replaceChildren(h('h1', {}, 'Loss monitoring'), h('section', {}, sessions.length ? h('table', {},
    h('tr', {}, ['Id', 'Slice', 'Flow', 'Family', 'Period', 'Last period lost', 'Problem', ''].map((t) => h('th', {}, t))), rows)
    : h('p', { class: 'muted' }, 'No loss sessions yet.')), lossForm(slices));
}

function lossForm(slices) {
  const [slice, from, to] = slicePairPicker(slices);
  const family = h('select', {}, h('option', { value: 'ipv6' }, 'IPv6'), h('option', { value: 'ipv4' }, 'IPv4'));
  const period = h('input', { type: 'number', value: '10000' });
  const form = h('form', { id: 'loss-form' }, h('h2', {}, 'Monitor a flow'),
    h('div', { class: 'row' }, field('Slice', 'slice', slice), field('From', 'from', from), field('To', 'to', to),
      field('Family', 'family', family), field('Period (ms)', 'period_ms', period)),
    h('div', { class: 'form-error' }), h('button', { type: 'submit' }, 'Start monitoring'));
  submitter(form, async () => {
    const l = await api('POST', '/loss-sessions', { slice: slice.value, from: from.value, to: to.value, family: family.value,
      period_ms: Number(period.value) });
    location.hash = `#/loss/${l.id}`;
  });
  return form;
}

function periodsTable(periods) {
  return h('table', { class: 'periods' }, h('tr', {}, ['period', 'end', 'colour', 'sent', 'received', 'lost', 'loss']
    .map((t, k) => h('th', { class: k > 2 ? 'num' : '' }, t))),
  periods.slice(-20).reverse().map((p) => h('tr', { 'data-period': p.index },
    h('td', {}, p.spans > 1 ? `${p.index} (${p.spans} periods)` : p.index), h('td', {}, p.end), h('td', {}, p.colour),
    h('td', { class: 'num' }, p.sent), h('td', { class: 'num' }, p.received), h('td', { class: 'num' }, p.lost),
    h('td', { class: 'num' }, `${(100 * p.loss_ratio).toFixed(2)}%`))));
}

async function lossSessionView(id) {
  const l = await api('GET', `/loss-sessions/${id}`);
  const box = h('section', { id: 'periods' });
  main.replaceChildren(h('h1', {}, `Loss of ${l.from} → ${l.to} on ${l.slice} (${l.family})`),
    h('p', { class: 'muted' }, `SID list ${l.segments.join(', ')}; colour switched every ${l.period_ms / 1000} s by ${l.from}'s edge, counted at both ends`),
    box);
  const load = async () => box.replaceChildren(periodsTable((await api('GET', `/loss-sessions/${id}/periods?since=24h`)).periods));
  await load();
  const timer = setInterval(() => load().catch(() => {}), 2000);
  return () => clearInterval(timer);
}

const RANGES = { '5m': 300, '1h': 3600, '24h': 86400 };

// One session: live chart of direct and return delay, statistics, interval table.
async function sessionView(id) {
  const s = await api('GET', `/delay-sessions/${id}`);
  let range = '5m';
  const chartBox = h('div', { id: 'chart', 'data-points': '0' });
  const stats = h('section', { id: 'stats' });
  const intervals = h('section', { id: 'intervals' });
  const caption = h('span', { class: 'muted' }, 'every sample');
  const rangeSelect = h('select', {
    id: 'range',
    onchange: () => {
      range = rangeSelect.value;
      caption.textContent = range === '5m' ? 'every sample' : 'mean of each interval';
      reload();
    },
  }, Object.keys(RANGES).map((r) => h('option', { value: r }, `last ${r}`)));
  const loss = h('section', { id: 'flow-loss' });
  main.replaceChildren(h('h1', {}, `Delay session ${s.id}: ${s.sender} → ${s.reflector} on ${s.slice}`),
    h('section', {}, h('div', { class: 'toolbar' }, rangeSelect, caption), chartBox),
    h('h2', {}, 'Statistics'), stats, h('h2', {}, 'Intervals'), intervals,
    h('h2', {}, `Loss of the ${s.sender} → ${s.reflector} traffic, per period`), loss);

  // x in seconds; direct and return in ms
  let data = [[], [], []];
  let lastMs = 0;
  const plot = new uPlot({
    width: Math.min(1050, main.clientWidth - 40), height: 300,
    scales: { x: { time: true } },
    axes: [{}, { label: 'ms' }],
    series: [{}, { label: 'direct', stroke: '#1f6feb', width: 1.5 }, { label: 'return', stroke: '#e8590c', width: 1.5 }],
  }, data, chartBox);

  async function loadPoints(initial) {
    const now = Date.now();
    const from = now - RANGES[range] * 1000;
    if (range === '5m') {
      const since = initial ? from : Math.max(from, lastMs + 1);
      const r = await api('GET', `/delay-sessions/${id}/results?since=${since}&limit=10000`);
      for (const x of r.samples) {
        data[0].push(x.time_ms / 1000);
        data[1].push(x.direct_ms);
        data[2].push(x.return_ms);
        lastMs = Math.max(lastMs, x.time_ms);
      }
      while (data[0].length && data[0][0] < from / 1000) data.forEach((a) => a.shift());
    } else {
      const r = await api('GET', `/delay-sessions/${id}/intervals?since=${from}&limit=10000`);
      data = [r.intervals.map((i) => (i.start_ms + i.length_ms / 2) / 1000),
        r.intervals.map((i) => i.direct.mean_ms), r.intervals.map((i) => i.return.mean_ms)];
    }
    plot.setData(data);
    chartBox.dataset.points = String(data[0].length);
  }

  async function loadStats() {
    const st = await api('GET', `/delay-sessions/${id}/stats?since=${range}`);
    const cols = ['mean_ms', 'min_ms', 'max_ms', 'stddev_ms', 'jitter_ms', 'p50_ms', 'p99_ms'];
    const row = (name, key) => h('tr', { 'data-series': key }, h('td', {}, name), cols.map((c) => h('td', { class: 'num' }, fmt(st[key][c]))));
    const p = st.packets;
    stats.replaceChildren(h('table', {},
      h('tr', {}, h('th', {}, 'ms'), ['mean', 'min', 'max', 'stddev', 'jitter', 'p50', 'p99'].map((t) => h('th', { class: 'num' }, t))),
      row('direct', 'direct'), row('return', 'return'), row('round trip', 'round_trip')),
    h('p', { id: 'loss' }, `${st.samples} samples since ${st.since}; sent ${p.sent}, received ${p.received}, lost ${p.lost}`,
      p.lost_direct == null ? ' (a stateless reflector cannot tell the direction)' : ` (outbound ${p.lost_direct}, return ${p.lost_return})`));
  }

  async function loadIntervals() {
    const r = await api('GET', `/delay-sessions/${id}/intervals?since=${range}&limit=10000`);
    const rows = r.intervals.slice(-20).reverse().map((i) => h('tr', {},
      h('td', {}, i.start + (i.open ? ' (open)' : '')), h('td', { class: 'num' }, i.samples),
      h('td', { class: 'num' }, fmt(i.direct.mean_ms)), h('td', { class: 'num' }, fmt(i.direct.p99_ms)),
      h('td', { class: 'num' }, fmt(i.return.mean_ms)), h('td', { class: 'num' }, fmt(i.return.p99_ms)),
      h('td', { class: 'num' }, i.packets.lost_direct ?? '–'), h('td', { class: 'num' }, i.packets.lost_return ?? '–'),
      h('td', { class: 'num' }, i.packets.lost)));
    intervals.replaceChildren(h('table', {}, h('tr', {}, ['start', 'samples', 'direct mean', 'direct p99', 'return mean',
      'return p99', 'lost out', 'lost back', 'lost'].map((t, k) => h('th', { class: k ? 'num' : '' }, t))), rows));
  }

  // The loss of the same flow, when a loss session monitors it (alternate marking).
  async function loadLoss() {
    const ls = (await api('GET', '/loss-sessions')).find((x) => x.slice === s.slice && x.from === s.sender && x.to === s.reflector);
    if (!ls) {
      loss.replaceChildren(h('p', { class: 'muted' }, 'Not monitored. ', h('a', { href: '#/loss' }, 'Monitor this flow'), '.'));
      return;
    }
    loss.replaceChildren(periodsTable((await api('GET', `/loss-sessions/${ls.id}/periods?since=${range}`)).periods));
  }

  async function reload() {
    data = [[], [], []];
    lastMs = 0;
    await Promise.all([loadPoints(true), loadStats(), loadIntervals(), loadLoss()]);
  }
  await reload();
  const timer = setInterval(() => {
    Promise.all([loadPoints(false), loadStats(), loadIntervals(), loadLoss()]).catch(() => {});
  }, 2000);
  return () => { clearInterval(timer); plot.destroy(); };
}

// ---- SLA steering --------------------------------------------------------------------------
// SLA classes, each steered slice's directions with every candidate path measured against its
// SLA (the one carrying the traffic marked), and the events, newest first. Refreshes itself.
const limitText = (l) => [l.delay_ms != null && `delay ≤ ${l.delay_ms} ms`, l.delay_p90_ms != null && `p90 ≤ ${l.delay_p90_ms} ms`,
  l.jitter_ms != null && `jitter ≤ ${l.jitter_ms} ms`, l.loss_pct != null && `loss ≤ ${l.loss_pct}%`].filter(Boolean).join(', ') || 'no limits';
const over = (v, lim) => v != null && lim != null && v > lim;

function measureCells(m, limits) {
  if (!m) return ['delay_ms', 'delay_p90_ms', 'jitter_ms', 'loss_pct'].map(() => h('td', { class: 'num muted' }, '–'));
  return ['delay_ms', 'delay_p90_ms', 'jitter_ms', 'loss_pct'].map((k) =>
    h('td', { class: `num ${over(m[k], limits[k]) ? 'bad-text' : ''}`, 'data-k': k }, fmt(m[k], k === 'loss_pct' ? 1 : 2)));
}

function policyCard(p, sla) {
  const limits = sla ? sla.limits : {};
  const candidateRow = (c) => h('tr', { 'data-candidate': c.name, class: c.active ? 'active' : '' },
    h('td', {}, c.name), h('td', {}, c.waypoints.join(', ') || 'direct'), ...measureCells(c.last_window, limits),
    h('td', {}, c.last_window ? pill(c.complies, 'complies', 'violates') : h('span', { class: 'pill muted' }, 'measuring')),
    h('td', {}, c.active ? h('strong', {}, 'carries it') : ''));
  const direction = (d) => h('div', { class: 'direction', 'data-direction': `${d.from}>${d.to}` },
    h('h3', {}, `${d.from} → ${d.to} `, d.violated ? pill(false, '', 'SLA violated') : pill(true, 'within SLA', ''),
      h('span', { class: 'muted' }, ` on ${d.active}${d.since ? ` since ${d.since}` : ''}`)),
    h('table', {}, h('tr', {}, ['Candidate', 'Waypoints', 'Delay ms', 'p90 ms', 'Jitter ms', 'Loss %', 'Against the SLA', 'Traffic']
      .map((t) => h('th', {}, t))), d.candidates.map(candidateRow)));
  return h('section', { 'data-policy': p.id }, h('h2', {}, `${p.id}: slice ${p.slice} under ${sla ? sla.name : p.sla}`),
    h('p', { class: 'muted' }, `${sla ? limitText(limits) : ''}; probes every ${p.probe.interval_ms} ms, windows of ${p.probe.window_ms} ms, ` +
      `switch after ${p.probe.windows}, back to the preferred path after ${p.probe.hold_down_s} s compliant`),
    p.directions.map(direction));
}

function eventsTable(events) {
  const kinds = { switch: 'muted', violation: 'bad', clear: 'good', no_compliant: 'bad' };
  return h('table', { id: 'events' }, h('tr', {}, ['Time', 'Slice', 'Direction', 'Event', 'Path', 'Measured', 'Limits'].map((t) => h('th', {}, t))),
    events.map((e) => h('tr', { 'data-event': e.id, 'data-kind': e.kind },
      h('td', {}, e.time), h('td', {}, e.slice), h('td', {}, `${e.from} → ${e.to}`),
      h('td', {}, h('span', { class: `pill ${kinds[e.kind] || 'muted'}` }, e.kind)),
      h('td', {}, e.to_path ? `${e.path} → ${e.to_path}` : e.path),
      h('td', {}, `delay ${fmt(e.measured.delay_ms, 2)} ms, jitter ${fmt(e.measured.jitter_ms, 2)} ms, loss ${fmt(e.measured.loss_pct, 1)}%`),
      h('td', {}, limitText(e.limits)))));
}

function slaForm(tenants) {
  const num = (ph) => h('input', { type: 'number', step: 'any', min: '0', placeholder: ph });
  const name = h('input', { placeholder: 'gold' });
  const tenant = h('select', {}, tenants.map((t) => h('option', { value: t.id }, `${t.id} ${t.name}`)));
  const lim = { delay_ms: num('ms'), delay_p90_ms: num('ms'), jitter_ms: num('ms'), loss_pct: num('%') };
  const form = h('form', { id: 'sla-form' }, h('h2', {}, 'New SLA class'),
    h('div', { class: 'row' }, field('Name', 'name', name), who.operator ? field('Tenant', 'tenant', tenant) : ''),
    h('div', { class: 'row' }, field('One-way delay', 'limits.delay_ms', lim.delay_ms), field('Delay p90', 'limits.delay_p90_ms', lim.delay_p90_ms),
      field('Jitter', 'limits.jitter_ms', lim.jitter_ms), field('Loss', 'limits.loss_pct', lim.loss_pct)),
    h('div', { class: 'form-error' }), h('p', {}, h('button', { type: 'submit' }, 'Create SLA class')));
  submitter(form, async () => {
    const body = { name: name.value.trim(), limits: {} };
    if (who.operator) body.tenant = tenant.value;
    for (const [k, el] of Object.entries(lim)) if (el.value !== '') body.limits[k] = Number(el.value);
    await api('POST', '/sla-classes', body);
    route();
  });
  return form;
}

function policyForm(slices, slas) {
  const slice = h('select', {}, h('option', { value: '' }, '–'), slices.map((s) => h('option', { value: s.id }, `${s.id} ${s.name}`)));
  const sla = h('select', {}, h('option', { value: '' }, '–'), slas.map((c) => h('option', { value: c.id }, `${c.id} ${c.name}`)));
  const from = h('input', { placeholder: 'every pair' });
  const to = h('input', { placeholder: 'every pair' });
  const num = (v) => h('input', { type: 'number', value: String(v) });
  const probe = { interval_ms: num(100), window_ms: num(300), windows: num(3), hold_down_s: num(30) };
  const form = h('form', { id: 'policy-form' }, h('h2', {}, 'Steer a slice'),
    h('div', { class: 'row' }, field('Slice', 'slice', slice), field('SLA class', 'sla', sla),
      field('Only from (device)', 'pairs[0].from', from), field('to (device)', 'pairs[0].to', to)),
    h('div', { class: 'row' }, field('Probe every (ms)', 'probe.interval_ms', probe.interval_ms), field('Window (ms)', 'probe.window_ms', probe.window_ms),
      field('Windows before a switch', 'probe.windows', probe.windows), field('Hold-down (s)', 'probe.hold_down_s', probe.hold_down_s)),
    h('div', { class: 'form-error' }), h('p', {}, h('button', { type: 'submit' }, 'Start steering')));
  submitter(form, async () => {
    const body = { slice: slice.value, sla: sla.value, probe: {} };
    for (const [k, el] of Object.entries(probe)) body.probe[k] = Number(el.value);
    if (from.value.trim() || to.value.trim()) body.pairs = [{ from: from.value.trim(), to: to.value.trim() }];
    await api('POST', '/steering-policies', body);
    route();
  });
  return form;
}

async function steeringView() {
  const [slices, slas, tenants] = await Promise.all([api('GET', '/slices'), api('GET', '/sla-classes'),
    who.operator ? api('GET', '/tenants') : Promise.resolve([])]);
  const classes = h('section', {}, h('h2', {}, 'SLA classes'), slas.length ? h('table', { id: 'slas' },
    h('tr', {}, ['Id', 'Name', 'Limits', ''].map((t) => h('th', {}, t))),
    slas.map((c) => h('tr', { 'data-sla': c.id }, h('td', {}, c.id), h('td', {}, c.name), h('td', {}, limitText(c.limits)),
      h('td', {}, h('button', { class: 'danger', onclick: () => del(`/sla-classes/${c.id}`) }, 'Delete')))))
    : h('p', { class: 'muted' }, 'No SLA classes yet.'));
  const policies = h('div', { id: 'policies' });
  const events = h('section', {}, h('h2', {}, 'Events'), h('div', { id: 'events-slot' }));
  main.replaceChildren(h('h1', {}, 'SLA steering'), classes, policies, events, slaForm(tenants), policyForm(slices, slas));
  async function refresh() {
    const [ps, ev] = await Promise.all([api('GET', '/steering-policies'), api('GET', '/steering-events?limit=50')]);
    const byId = Object.fromEntries(slas.map((c) => [c.id, c]));
    policies.replaceChildren(...(ps.length ? ps.map((p) => policyCard(p, byId[p.sla])) : [h('p', { class: 'muted' }, 'No slice is steered yet.')]));
    events.querySelector('#events-slot').replaceChildren(ev.events.length ? eventsTable(ev.events) : h('p', { class: 'muted' }, 'No events yet.'));
  }
  await refresh();
  const timer = setInterval(() => refresh().catch(() => {}), 1000);
  return () => clearInterval(timer);
}

// ---- routing ---------------------------------------------------------------------------------
const routes = [
  [/^#\/devices$/, devicesView, 'Devices'],
  [/^#\/tenants$/, tenantsView, 'Tenants', true],
  [/^#\/slices$/, slicesView, 'Slices'],
  [/^#\/sessions$/, sessionsView, 'Delay sessions'],
  [/^#\/sessions\/([\w-]+)$/, sessionView],
  [/^#\/loss$/, lossView, 'Loss'],
  [/^#\/loss\/([\w-]+)$/, lossSessionView],
  [/^#\/steering$/, steeringView, 'Steering'],
];

async function route() {
  stopView();
  stopView = () => {};
  if (!sessionStorage.getItem('segwan-token')) return signIn();
  if (!who) {
    try {
      who = await api('GET', '/whoami');
    } catch {
      return signIn();
    }
  }
  document.getElementById('who').textContent = who.operator ? 'operator' : `tenant ${who.tenant}`;
  document.getElementById('signout').hidden = false;
  const hash = location.hash || (who.operator ? '#/devices' : '#/slices');
  document.getElementById('nav').replaceChildren(...routes.filter((r) => r[2] && (!r[3] || who.operator))
    .map(([re, , name]) => h('a', { href: re.source.replace(/^\^|\$$/g, '').replace(/\\\//g, '/'), class: re.test(hash) ? 'active' : '' }, name)));
  for (const [re, view] of routes) {
    const m = hash.match(re);
    if (!m) continue;
    try {
      const stop = await view(...m.slice(1));
      if (typeof stop === 'function') stopView = stop;
    } catch (e) {
      main.replaceChildren(h('p', { class: 'form-error' }, e.message));
    }
    return;
  }
  location.hash = who.operator ? '#/devices' : '#/slices';
}

document.getElementById('signout').addEventListener('click', () => { signOut(); route(); });
window.addEventListener('hashchange', route);
route();
