// latchkey console: the one script of every page (docs/console.md). No framework, no build step.
// Live updates by Server-Sent Events, the pause buttons, copy buttons, the command panel.
'use strict';
(() => {
  const $ = (s, r = document) => r.querySelector(s);
  const $$ = (s, r = document) => [...r.querySelectorAll(s)];
  const utc = (ms) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
  const timeEl = (ms) => {
    if (ms === null) {
      const s = document.createElement('span');
      s.className = 'muted';
      s.textContent = 'never';
      return s;
    }
    const t = document.createElement('time');
    t.dateTime = new Date(ms).toISOString();
    t.textContent = utc(ms);
    return t;
  };
  const root = document.documentElement;
  const body = document.body;
  const by = (attr, id) => $$(`[${attr}]`).filter((e) => e.getAttribute(attr) === id);

  function setStatus(s) {
    const state = s.blocked ? 'blocked' : s.connected ? 'connected' : 'offline';
    for (const b of by('data-status-for', s.deviceId)) {
      b.className = `badge ${state}`;
      b.textContent = state[0].toUpperCase() + state.slice(1);
    }
    for (const c of by('data-seen-for', s.deviceId)) c.replaceChildren(timeEl(s.lastSeenAt));
    // only a device page has these fields, and its stream carries only its device
    for (const f of ['lastConnectedAt', 'lastDisconnectedAt']) $(`[data-field="${f}"]`)?.replaceChildren(timeEl(s[f]));
    // the last refusal, in words (the stream adds them as text)
    if (s.lastError) {
      for (const cell of by('data-refusal-for', s.deviceId)) {
        const strong = document.createElement('strong');
        strong.textContent = s.lastError.text;
        const code = document.createElement('code');
        code.textContent = s.lastError.code;
        cell.replaceChildren(strong, ' ', code, ' · ', timeEl(s.lastError.at));
      }
    }
  }

  // a refusal was recorded: the health chart's section reloads itself, at most once a second
  function onRefusal() {
    const chart = $('[data-refresh-src]');
    if (chart && !chart.dataset.pending) {
      chart.dataset.pending = '1';
      setTimeout(async () => {
        delete chart.dataset.pending;
        const res = await fetch(chart.dataset.refreshSrc, { credentials: 'same-origin' });
        if (res.ok && !res.redirected) chart.innerHTML = await res.text(); // the server's escaped HTML
      }, 1000);
    }
  }

  // live telemetry of a device page: the last 100 messages, newest first; a pause of its own
  const tele = $('#telemetry tbody');
  const teleToggle = $('#telemetry-toggle');
  let telePaused = false;
  let missed = 0;
  teleToggle?.addEventListener('click', () => {
    telePaused = !telePaused;
    teleToggle.setAttribute('aria-pressed', String(telePaused));
    teleToggle.textContent = telePaused ? 'Resume telemetry' : 'Pause telemetry';
    if (!telePaused) missed = 0;
    $('#telemetry-note').textContent = telePaused ? 'Paused.' : 'Messages appear here as the device publishes them (the last 100).';
  });
  function addTelemetry(t) {
    if (!tele) return;
    if (telePaused) {
      missed++;
      $('#telemetry-note').textContent = `Paused; ${missed} new message${missed === 1 ? '' : 's'} not shown.`;
      return;
    }
    const tr = document.createElement('tr');
    for (const v of [timeEl(t.at), t.topic, t.payload + (t.truncated ? ' …(cut at 4 KiB)' : '')]) {
      const td = document.createElement('td');
      td.append(v);
      tr.append(td);
    }
    tr.lastChild.className = 'mono';
    tele.prepend(tr);
    while (tele.rows.length > 100) tele.deleteRow(-1);
  }

  // one stream per page; "Pause live updates" closes it, resuming reopens it (hello + snapshot first)
  let source = null;
  function connect() {
    source = new EventSource(body.dataset.events);
    const count = (e) => {
      for (const c of $$('[data-connected-count]')) c.textContent = JSON.parse(e.data).connected.toLocaleString('en-US');
    };
    source.addEventListener('hello', (e) => {
      root.dataset.live = 'open';
      count(e);
    });
    source.addEventListener('fleet', count);
    source.addEventListener('status', (e) => setStatus(JSON.parse(e.data)));
    source.addEventListener('refusal', onRefusal);
    source.addEventListener('telemetry', (e) => addTelemetry(JSON.parse(e.data)));
    source.addEventListener('change', (e) => {
      const c = JSON.parse(e.data).change;
      if (c.type === 'principal_deleted') for (const n of by('data-deleted-for', c.principal)) n.hidden = false;
    });
    source.onerror = () => {
      root.dataset.live = 'reconnecting';
    };
  }
  if (body.dataset.events) {
    connect();
    const toggle = $('#live-toggle');
    toggle?.addEventListener('click', () => {
      const pause = toggle.getAttribute('aria-pressed') !== 'true';
      toggle.setAttribute('aria-pressed', String(pause));
      toggle.textContent = pause ? 'Resume live updates' : 'Pause live updates';
      if (pause) {
        source.close();
        root.dataset.live = 'paused';
      } else connect();
    });
  }

  // copy buttons
  for (const b of $$('button[data-copy]')) {
    b.addEventListener('click', async () => {
      await navigator.clipboard.writeText(b.dataset.copy);
      const was = b.textContent;
      b.textContent = 'Copied';
      setTimeout(() => (b.textContent = was), 1500);
    });
  }

  // forms whose answer is a panel of the page (the command reply): sent without leaving the page
  for (const form of $$('form[data-fragment]')) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const panel = document.getElementById(form.dataset.fragment);
      const button = $('button[type=submit]', form);
      button.disabled = true;
      panel.setAttribute('aria-busy', 'true');
      panel.textContent = 'Waiting for the reply…';
      try {
        const res = await fetch(form.action, {
          method: 'POST',
          body: new URLSearchParams(new FormData(form)),
          headers: { 'x-console-fragment': form.dataset.fragment },
          credentials: 'same-origin',
        });
        // signed out meanwhile (a redirect to sign-in) or refused (401/403): say so, do not show that page here
        if (res.redirected || res.status === 401 || res.status === 403) panel.textContent = 'Your session has ended or this page is out of date: reload the page and try again.';
        else panel.innerHTML = await res.text(); // the server's escaped HTML
      } catch {
        panel.textContent = 'The console did not answer; check the connection and try again.';
      } finally {
        button.disabled = false;
        panel.removeAttribute('aria-busy');
      }
    });
  }
})();
