// The dashboard page: logs in with the admin token (exchanged for a session cookie), then
// renders the state pushed every second over /dashboard/events. Every value from the server is
// written with textContent or drawn on a uPlot canvas: names and emails are never parsed as HTML.
// The charts (uPlot, served by the service from its package) have a time axis, units on the
// y axis and in the legend, and a legend entry per series.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, className) => {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  };

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

  const CHART_HEIGHT = 170;
  const round = (v) => (v >= 100 ? Math.round(v) : Math.round(v * 10) / 10);

  /** A uPlot line chart over the last minute: x is the time (seconds), y starts at 0 and has `unit` on it. */
  function lineChart(target, options) {
    const plot = new uPlot({
      width: Math.max(280, target.clientWidth),
      height: CHART_HEIGHT,
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        { label: 'time', labelSize: 18, stroke: '#66707a' },
        { label: options.yLabel, labelSize: 18, size: 64, stroke: '#66707a', values: (_u, ticks) => ticks.map((v) => `${round(v)} ${options.unit}`) },
      ],
      series: [
        { label: 'time' },
        ...options.series.map((s) => ({ label: s.label, stroke: s.color, width: 2, value: (_u, v) => (v === null || v === undefined ? '-' : `${round(v)} ${options.unit}`) })),
      ],
      legend: { live: true },
    }, [[], ...options.series.map(() => [])], target);
    if (typeof ResizeObserver === 'function') {
      new ResizeObserver(() => {
        const width = Math.max(280, target.clientWidth);
        if (width !== plot.width) plot.setSize({ width, height: CHART_HEIGHT });
      }).observe(target);
    }
    return plot;
  }

  const charts = {
    throughput: lineChart($('throughput'), {
      yLabel: 'requests/s', unit: 'req/s',
      series: [{ label: 'requests', color: '#2463eb' }, { label: 'errors (5xx)', color: '#c2410c' }],
    }),
    latency: lineChart($('latency-chart'), {
      yLabel: 'latency (ms)', unit: 'ms',
      series: [{ label: 'p50', color: '#15803d' }, { label: 'p90', color: '#ca8a04' }, { label: 'p99', color: '#c2410c' }],
    }),
  };
  // For a look from the browser's console (and the browser test): the uPlot instances.
  window.registrarCharts = charts;

  function renderCharts(history) {
    const seconds = history.map((p) => p.second);
    charts.throughput.setData([seconds, history.map((p) => p.requests), history.map((p) => p.errors)]);
    charts.latency.setData([seconds, history.map((p) => p.p50), history.map((p) => p.p90), history.map((p) => p.p99)]);
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

  /** One row per queued course; the section stays hidden while no course has a queue. */
  function renderWaitingRooms(rooms) {
    $('waiting-rooms').hidden = rooms.length === 0;
    $('waiting-rooms-table').tBodies[0].replaceChildren(...rooms.map((r) => {
      const state = r.soldOutSince ? `sold out since ${new Date(r.soldOutSince).toLocaleTimeString()}` : r.ordered ? 'admitting' : 'joining (not ordered yet)';
      const p = r.places;
      const tr = row([r.course, state, p.waiting, p.unverified, p.admitted, p.registered, p.expired, p.left, p['sold-out'], p.closed, `${round(r.admissionsPerSecond)}/s`]);
      tr.dataset.course = r.course;
      return tr;
    }));
  }

  /** The course list of the history's selector, keeping the selection (the first course until one is chosen). */
  function renderHistoryCourses(courses) {
    const select = $('history-course');
    const chosen = select.value;
    const ids = courses.map((c) => c.id);
    if (ids.join('\n') !== [...select.options].map((o) => o.value).join('\n')) {
      select.replaceChildren(...courses.map((c) => {
        const option = el('option', `${c.title} (${c.id})`);
        option.value = c.id;
        return option;
      }));
      if (ids.includes(chosen)) select.value = chosen;
    }
  }

  let historyLoading = false;
  /** The selected course's newest history entries, read through the dashboard's session. */
  async function renderHistory() {
    const course = $('history-course').value;
    if (!course || historyLoading) return;
    historyLoading = true;
    try {
      const response = await fetch(`/dashboard/history?course=${encodeURIComponent(course)}`);
      if (!response.ok) return;
      const { items } = await response.json();
      $('history').replaceChildren(...(items.length ? items : [null]).map((e) => e
        ? el('li', `${new Date(e.at).toLocaleTimeString()}  ${e.kind} by ${e.actor}: ${e.reason}`)
        : el('li', 'no changes yet')));
    } finally {
      historyLoading = false;
    }
  }
  $('history-course').addEventListener('change', () => void renderHistory());

  function renderService(service) {
    if (service.error) {
      $('status').textContent = service.error;
      return;
    }
    $('courses').tBodies[0].replaceChildren(...service.courses.map((c) => row([`${c.title} (${c.id})`, seats(c.enrolled, c.capacity), seats(c.waitlisted, c.waitlistCapacity)])));
    renderWaitingRooms(service.waitingRooms);
    renderHistoryCourses(service.courses);
    void renderHistory();
    $('queues').tBodies[0].replaceChildren(...service.jobs.queues.map((q) => row([q.task, q.queued, q.running, q.retrying, q.dead, q.oldestQueuedSeconds === null ? '-' : `${q.oldestQueuedSeconds.toFixed(1)} s`])));
    const d = service.jobs;
    const facts = [['emails sent', d.emails.sent], ['emails failed', d.emails.failed], ['webhooks delivered', d.webhooks.delivered], ['webhooks pending', d.webhooks.pending], ['webhooks failed', d.webhooks.failed]];
    $('deliveries').replaceChildren(...facts.flatMap(([name, value]) => [el('dt', name), el('dd', value)]));
    $('mail').replaceChildren(...service.mail.map((m) => el('li', `${new Date(m.createdAt).toLocaleTimeString()}  ${m.to}: ${m.subject}`)));
  }

  function renderRestarts(restarts) {
    $('restarts').replaceChildren(...(restarts.length ? restarts : [null]).map((r) => r
      ? el('li', `${new Date(r.at).toLocaleTimeString()}: ${r.role} worker ${r.pid} ${r.reason || `exited (${r.signal || `code ${r.code}`})`}; replaced`)
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
