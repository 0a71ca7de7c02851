// The dashboard page: logs in with the admin token (exchanged for a session cookie), then
// renders the state pushed every second over /dashboard/events. Every value from the server is
// written with textContent or as SVG attributes: names and emails are never parsed as HTML.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, className) => {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  };
  const SVG = 'http://www.w3.org/2000/svg';

  const form = $('login');
  if (form) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const response = await fetch('/dashboard/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: $('token').value }),
      });
      if (response.ok) location.reload();
      else $('login-error').textContent = 'That is not the admin token.';
    });
    return;
  }

  $('logout').addEventListener('click', async () => {
    await fetch('/dashboard/logout', { method: 'POST' });
    location.reload();
  });

  function renderLanes(workers) {
    const lanes = $('lanes');
    lanes.replaceChildren(...workers.map((worker) => {
      const lane = el('div', undefined, worker.silent ? 'lane silent' : 'lane');
      lane.dataset.pid = worker.pid;
      const title = el('div', `${worker.role === 'jobs' ? 'Job worker' : 'HTTP worker'} ${worker.pid}`, 'lane-title');
      title.append(el('span', `${worker.inFlight} in flight${worker.silent ? ' (not heard from)' : ''}`, 'count'));
      const phases = el('div', undefined, 'phases');
      for (const [phase, count] of Object.entries(worker.byPhase)) phases.append(el('span', `${count} ${phase}`));
      const list = el('ul', undefined, 'requests');
      for (const request of worker.sample) list.append(el('li', `${request.label}: ${request.phase} (${request.ageMs} ms)`));
      lane.append(title, phases, list);
      return lane;
    }));
  }

  function chart(svg, series, colors) {
    const width = 600, height = 120, pad = 4;
    const max = Math.max(1, ...series.flat().filter((v) => v !== null));
    const nodes = series.map((values, index) => {
      const points = values.map((v, i) => v === null ? null : `${pad + (i * (width - 2 * pad)) / Math.max(1, values.length - 1)},${height - pad - ((height - 2 * pad) * v) / max}`).filter(Boolean);
      const line = document.createElementNS(SVG, 'polyline');
      line.setAttribute('points', points.join(' '));
      line.setAttribute('fill', 'none');
      line.setAttribute('stroke', colors[index]);
      line.setAttribute('stroke-width', '2');
      return line;
    });
    const label = document.createElementNS(SVG, 'text');
    label.setAttribute('x', '6');
    label.setAttribute('y', '14');
    label.setAttribute('font-size', '11');
    label.setAttribute('fill', '#66707a');
    label.textContent = `max ${Math.round(max)}`;
    svg.replaceChildren(...nodes, label);
  }

  function renderCharts(history) {
    chart($('throughput'), [history.map((p) => p.requests)], ['#2463eb']);
    chart($('latency-chart'), [history.map((p) => p.p50), history.map((p) => p.p90), history.map((p) => p.p99)], ['#15803d', '#ca8a04', '#c2410c']);
    const last = history.slice(-5).filter((p) => p.requests > 0);
    const rps = last.length ? Math.round(last.reduce((a, p) => a + p.requests, 0) / 5) : 0;
    $('rps').textContent = `${rps}/s`;
    const latest = [...history].reverse().find((p) => p.p99 !== null);
    $('latency').textContent = latest ? `${latest.p50} / ${latest.p90} / ${latest.p99} ms` : '';
  }

  function row(cells) {
    const tr = el('tr');
    for (const cell of cells) tr.append(cell instanceof Node ? cell : el('td', cell));
    return tr;
  }

  function seats(taken, total) {
    const td = el('td');
    const bar = el('span', undefined, 'bar');
    bar.style.width = `${total ? Math.round((60 * taken) / total) : 0}px`;
    td.append(bar, document.createTextNode(`${taken} / ${total}`));
    return td;
  }

  function renderService(service) {
    if (service.error) {
      $('status').textContent = service.error;
      return;
    }
    $('courses').tBodies[0].replaceChildren(...service.courses.map((c) => row([`${c.title} (${c.id})`, seats(c.enrolled, c.capacity), seats(c.waitlisted, c.waitlistCapacity)])));
    $('queues').tBodies[0].replaceChildren(...service.jobs.queues.map((q) => row([q.task, q.queued, q.running, q.retrying, q.dead, q.oldestQueuedSeconds === null ? '-' : `${q.oldestQueuedSeconds.toFixed(1)} s`])));
    const d = service.jobs;
    const facts = [['emails sent', d.emails.sent], ['emails failed', d.emails.failed], ['webhooks delivered', d.webhooks.delivered], ['webhooks pending', d.webhooks.pending], ['webhooks failed', d.webhooks.failed]];
    $('deliveries').replaceChildren(...facts.flatMap(([name, value]) => [el('dt', name), el('dd', value)]));
    $('mail').replaceChildren(...service.mail.map((m) => el('li', `${new Date(m.createdAt).toLocaleTimeString()}  ${m.to}: ${m.subject}`)));
  }

  function renderRestarts(restarts) {
    $('restarts').replaceChildren(...(restarts.length ? restarts : [null]).map((r) => r
      ? el('li', `${new Date(r.at).toLocaleTimeString()}: ${r.role} worker ${r.pid} exited (${r.signal || `code ${r.code}`}); replaced`)
      : el('li', 'none since the supervisor started')));
  }

  const events = new EventSource('/dashboard/events');
  events.onmessage = (message) => {
    const state = JSON.parse(message.data);
    $('status').textContent = `live, ${new Date(state.cluster.generatedAt).toLocaleTimeString()}`;
    $('status').className = 'status live';
    renderLanes(state.cluster.workers);
    renderCharts(state.cluster.history);
    renderRestarts(state.cluster.restarts);
    renderService(state.service);
  };
  events.onerror = () => {
    $('status').textContent = 'reconnecting...';
    $('status').className = 'status';
  };
})();
