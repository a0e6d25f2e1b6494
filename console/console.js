// The operator's console: plain DOM code against the admin API. Everything shown comes from the API with
// the operator's token (kept in sessionStorage: this tab only). Data is written with textContent only.
'use strict';

const $ = (selector) => document.querySelector(selector);
const state = { token: sessionStorage.getItem('antragsrouter-token') || '', filter: {}, next: undefined, current: undefined, targets: [] };

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${state.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : {};
  if (!response.ok) throw new Error(`${response.status} ${json.code || ''}: ${json.detail || response.statusText}`);
  return json;
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined) continue;
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? '')));
  return node;
}

function show(view) {
  for (const id of ['login', 'overview', 'submissions', 'detail']) $(`#${id}`).hidden = true;
  for (const button of document.querySelectorAll('nav button[data-view]')) button.classList.toggle('active', button.dataset.view === view);
  if (view === 'login') {
    $('#login').hidden = false;
    $('#nav').hidden = true;
    return;
  }
  $('#nav').hidden = false;
  if (view === 'overview') {
    $('#overview').hidden = false;
    loadOverview().catch(report);
  } else {
    $('#submissions').hidden = false;
    const dead = view === 'dead';
    $('#submissions-title').textContent = dead ? 'Dead letters' : 'Submissions';
    $('#filters').elements.deliveryState.value = dead ? 'dead' : '';
    search().catch(report);
  }
}

function report(error) {
  if (String(error.message).startsWith('401') || String(error.message).startsWith('403')) {
    sessionStorage.removeItem('antragsrouter-token');
    state.token = '';
    show('login');
    $('#login-error').textContent = 'The token was not accepted (it needs role admin).';
    return;
  }
  $('#action-message').textContent = error.message;
  console.error(error);
}

async function login(event) {
  event.preventDefault();
  state.token = $('#token').value.trim();
  try {
    state.targets = (await api('GET', '/api/v1/admin/targets')).items;
    sessionStorage.setItem('antragsrouter-token', state.token);
    $('#token').value = '';
    $('#login-error').textContent = '';
    show('overview');
  } catch (error) {
    state.token = '';
    $('#login-error').textContent = error.message.startsWith('401') || error.message.startsWith('403')
      ? 'The token was not accepted (it needs role admin).' : `Login failed: ${error.message}`;
  }
}

async function loadOverview() {
  const overview = await api('GET', '/api/v1/admin/overview');
  $('#overview-since').textContent = `since ${new Date(overview.since).toLocaleTimeString()}`;
  const body = $('#targets tbody');
  body.replaceChildren(...overview.targets.map((t) => el('tr', { 'data-target': t.name },
    el('td', {}, t.name), el('td', {}, t.adapter),
    el('td', { class: t.health.ok ? 'ok' : 'down', title: t.health.detail || '' }, t.health.ok ? 'up' : 'down'),
    el('td', {}, t.lastHour.delivered), el('td', {}, t.lastHour.retry), el('td', {}, t.lastHour.dead),
    el('td', {}, `${Math.round(t.errorRate * 100)} %`))));
  $('#states').textContent = Object.entries(overview.states).map(([s, n]) => `${s}: ${n}`).join(' · ');
  drawChart(overview.perMinute);
}

function drawChart(perMinute) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 600 160');
  svg.setAttribute('preserveAspectRatio', 'none');
  const max = Math.max(1, ...perMinute.map((m) => Math.max(m.received, m.delivered)));
  const end = Date.now();
  for (const m of perMinute) {
    const minutesAgo = (end - Date.parse(`${m.minute}:00Z`)) / 60000;
    const x = 600 - (minutesAgo / 60) * 600;
    for (const [kind, value, dx] of [['received', m.received, 0], ['delivered', m.delivered, 4]]) {
      const rect = document.createElementNS(ns, 'rect');
      const h = (value / max) * 150;
      rect.setAttribute('x', String(Math.max(0, x - 8 + dx)));
      rect.setAttribute('y', String(160 - h));
      rect.setAttribute('width', '4');
      rect.setAttribute('height', String(h));
      rect.setAttribute('class', kind);
      const title = document.createElementNS(ns, 'title');
      title.textContent = `${m.minute} UTC: ${value} ${kind}`;
      rect.append(title);
      svg.append(rect);
    }
  }
  $('#chart').replaceChildren(svg);
}

function filterQuery() {
  const form = $('#filters').elements;
  const query = new URLSearchParams();
  for (const key of ['tenant', 'route', 'target', 'state', 'deliveryState']) if (form[key].value) query.set(key, form[key].value);
  for (const key of ['from', 'to']) if (form[key].value) query.set(key, new Date(form[key].value).toISOString());
  query.set('limit', '50');
  return query;
}

async function search(append = false) {
  const query = filterQuery();
  if (append && state.next) query.set('after', state.next);
  const page = await api('GET', `/api/v1/admin/submissions?${query}`);
  state.next = page.next;
  const rows = page.items.map((s) => el('tr', { 'data-id': s.id, onclick: () => openDetail(s.id).catch(report) },
    el('td', {}, new Date(s.receivedAt).toLocaleString()), el('td', {}, el('code', {}, s.id)),
    el('td', { class: `state ${s.state}` }, s.state), el('td', {}, s.tenant || '–'), el('td', {}, s.messageType || '–'),
    el('td', {}, s.deliveries.map((d) => `${d.target}: ${d.state}${d.reason ? ` (${d.reason})` : ''}`).join(', ') || s.reason || '–')));
  if (append) $('#list tbody').append(...rows);
  else $('#list tbody').replaceChildren(...rows);
  $('#more').hidden = !state.next;
}

async function openDetail(id) {
  const s = await api('GET', `/api/v1/admin/submissions/${id}`);
  state.current = s;
  $('#detail').hidden = false;
  $('#detail-id').textContent = s.id;
  $('#detail-state').textContent = s.state;
  $('#detail-state').className = `state ${s.state}`;
  const facts = ['messageType', 'standard', 'version', 'reader', 'author', 'ags', 'leistung'].filter((k) => s.facts[k] !== undefined);
  $('#detail-facts').textContent = `${s.source}, ${s.size} bytes, received ${new Date(s.receivedAt).toLocaleString()} — ${facts.map((k) => `${k} ${s.facts[k]}`).join(', ')}`;
  $('#detail-deliveries tbody').replaceChildren(...s.deliveries.map((d) => el('tr', { 'data-target': d.target },
    el('td', {}, d.target), el('td', {}, d.route), el('td', { class: `d-${d.state}` }, d.state), el('td', {}, d.attempts),
    el('td', {}, [d.reason, d.detail].filter(Boolean).join(': ')), el('td', {}, d.reference || ''),
    el('td', {}, d.state === 'dead' ? el('span', {},
      el('button', { type: 'button', class: 'replay', onclick: () => act('replay', d.target) }, 'Replay…'), ' ',
      el('button', { type: 'button', class: 'discard', onclick: () => act('discard', d.target) }, 'Discard…')) : ''))));
  $('#parked-actions').hidden = s.state !== 'parked';
  $('#timeline').replaceChildren(...s.history.map((h) => el('li', {},
    `${new Date(h.at).toLocaleString()} ${h.event}${h.target ? ` ${h.target}` : ''}${h.attempt ? ` #${h.attempt}` : ''}${h.outcome ? ` → ${h.outcome}` : ''}${h.reason ? ` (${h.reason})` : ''}${h.detail ? ` — ${h.detail}` : ''}`)));
  $('#audit').replaceChildren(...(s.audit.length ? s.audit : [{ at: '', actor: '', action: 'no operator actions yet' }]).map((a) => el('li', { class: 'audit-entry' },
    `${a.at ? new Date(a.at).toLocaleString() : ''} ${a.actor} ${a.action}${a.target ? ` ${a.target}` : ''}${a.detail ? ` — ${a.detail}` : ''}`)));
  $('#detail').scrollIntoView();
}

/** Replay, discard or re-route through a confirmation dialog; the note goes to the audit trail. */
function act(action, target) {
  const s = state.current;
  const dialog = $('#action-dialog');
  $('#action-title').textContent = action === 'replay' ? `Replay the delivery to ${target}` : action === 'discard' ? `Discard ${target ? `the delivery to ${target}` : 'this submission'}` : 'Route again';
  $('#to-target-label').hidden = action !== 'replay';
  $('#to-target').replaceChildren(...state.targets.map((t) => el('option', { value: t.name, ...(t.name === target ? { selected: '' } : {}) }, t.name === target ? `${t.name} (same)` : t.name)));
  $('#action-note').value = '';
  $('#action-note').required = action === 'discard';
  dialog.onclose = async () => {
    if (dialog.returnValue !== 'ok') return;
    const note = $('#action-note').value.trim() || undefined;
    try {
      if (action === 'replay') {
        const toTarget = $('#to-target').value;
        await api('POST', `/api/v1/admin/submissions/${s.id}/replay`, { target, toTarget: toTarget === target ? undefined : toTarget, note });
      } else if (action === 'discard') {
        await api('POST', `/api/v1/admin/submissions/${s.id}/discard`, { target, reason: note });
      } else {
        await api('POST', `/api/v1/admin/submissions/${s.id}/reroute`, { note });
      }
      $('#action-message').textContent = `${action} done`;
      await openDetail(s.id);
    } catch (error) {
      report(error);
    }
  };
  dialog.showModal();
}

document.addEventListener('DOMContentLoaded', () => {
  $('#login-form').addEventListener('submit', login);
  $('#filters').addEventListener('submit', (event) => {
    event.preventDefault();
    search().catch(report);
  });
  $('#more').addEventListener('click', () => search(true).catch(report));
  $('#reroute').addEventListener('click', () => act('reroute'));
  $('#discard-submission').addEventListener('click', () => act('discard'));
  $('#logout').addEventListener('click', () => {
    sessionStorage.removeItem('antragsrouter-token');
    state.token = '';
    show('login');
  });
  for (const button of document.querySelectorAll('nav button[data-view]')) button.addEventListener('click', () => show(button.dataset.view));
  if (state.token) {
    api('GET', '/api/v1/admin/targets').then((t) => {
      state.targets = t.items;
      show('overview');
    }, () => show('login'));
  } else {
    show('login');
  }
});
