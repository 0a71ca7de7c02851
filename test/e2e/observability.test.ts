// The service as a user starts it (two HTTP workers and a job worker), seen from outside:
// /metrics parses as Prometheus text and its counters move by exactly the requests made, summed
// over the workers; the dashboard, in a real browser (Debian's chromium driven by
// playwright-core), logs in, and its lanes and counters change under load without a reload; a
// queued course's figures on both, through joins, admissions by the job worker's ticks and sold-out.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { Agent } from 'undici';
import { eventually } from '../support/eventually.ts';
import { newCourse, student } from '../support/factories.ts';
import { Client, TEST_ADMIN_TOKEN } from '../support/http.ts';
import { parsePrometheusText, sum } from '../support/prometheus-text.ts';
import {
  collectWorkerPids, findSupervisorPid, freePort, killProcessGroup, REPO_DIR, type ServiceProcess,
  spawnService, stopEmbeddedPostgres, stopProcess, waitForHealth,
} from '../support/service-process.ts';

const ARTIFACTS = path.join(REPO_DIR, 'test-artifacts');
let dataDir: string;
let baseUrl: string;
let client: Client;
let service: ServiceProcess | undefined;
let supervisorPid: number | undefined;
let browser: Browser | undefined;

before(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'registrar-observability-'));
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  client = new Client(baseUrl);
  service = spawnService({ via: 'node', env: { WORKERS: '2', PORT: String(port), DATA_DIR: dataDir, ADMIN_TOKEN: TEST_ADMIN_TOKEN, RATE_LIMIT_PER_MINUTE: '0' } });
  await waitForHealth(baseUrl, { timeoutMs: 60_000, service });
  supervisorPid = await findSupervisorPid(service);
});

after(async () => {
  await browser?.close();
  if (service?.isRunning()) await stopProcess(service, { pid: supervisorPid }).catch(() => killProcessGroup(service));
  await stopEmbeddedPostgres(dataDir).catch(() => undefined);
  await rm(dataDir, { recursive: true, force: true });
});

/** Debian's chromium, started once for the tests that need it. */
async function openBrowser(): Promise<Browser> {
  browser ??= await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  return browser;
}

async function scrape() {
  const answer = await fetch(`${baseUrl}/metrics`);
  assert.equal(answer.status, 200);
  assert.match(answer.headers.get('content-type') ?? '', /text\/plain/);
  return parsePrometheusText(await answer.text());
}

test('/metrics is Prometheus text, aggregated: its counters move by exactly the requests made', async () => {
  const course = await newCourse(client, { capacity: 40, waitlistCapacity: 0 });
  await collectWorkerPids(baseUrl, (pids) => pids.size >= 2);
  const before_ = await scrape();
  const counted = (samples: ReturnType<typeof parsePrometheusText>) => sum(samples, 'registrar_http_requests_total', { route: '/register' });
  // New connections for each request, so the supervisor spreads them over both workers.
  const fresh = new Agent({ connections: 1, pipelining: 1, keepAliveTimeout: 1 });
  const answers = await Promise.all(Array.from({ length: 60 }, (_, i) =>
    fetch(`${baseUrl}/register`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify(student(course, i, 'metrics')), dispatcher: fresh } as RequestInit)));
  assert.deepEqual([...new Set(answers.map((a) => a.status))].sort(), [201, 409]);
  const after_ = await scrape();
  assert.equal(counted(after_) - counted(before_), 60);
  assert.equal(sum(after_, 'registrar_http_requests_total', { route: '/register', status: '201' }) - sum(before_, 'registrar_http_requests_total', { route: '/register', status: '201' }), 40);
  // Per-process series stay apart: two HTTP workers and the job worker each report their loop.
  const loops = after_.filter((s) => s.name === 'registrar_event_loop_utilization');
  assert.equal(loops.filter((s) => s.labels.role === 'http').length, 2);
  assert.equal(loops.filter((s) => s.labels.role === 'jobs').length, 1);
  assert.ok(after_.some((s) => s.name === 'registrar_http_request_duration_seconds_bucket'));
  const timed = (samples: ReturnType<typeof parsePrometheusText>) => sum(samples, 'registrar_http_request_duration_seconds_count', { route: '/register' });
  assert.equal(timed(after_) - timed(before_), 60, 'every request timed once in the latency histogram');
  // One event-loop delay series per process, and the pool and thread-pool gauges.
  assert.equal(after_.filter((s) => s.name === 'registrar_event_loop_delay_p99_seconds').length, 3);
  for (const name of ['registrar_http_requests_in_flight', 'registrar_db_pool_in_use', 'registrar_db_pool_waiting', 'registrar_db_pool_size']) {
    assert.ok(after_.some((s) => s.name === name), `${name} on /metrics`);
  }
  // The group commit's batches: every registration that reached the database was in one (the
  // 40 created, and those refused by a batch rather than from the full course's memory).
  const batched = sum(after_, 'registrar_registration_batch_size_sum', {}) - sum(before_, 'registrar_registration_batch_size_sum', {});
  assert.ok(batched >= 40 && batched <= 60, `registrations in batches: ${batched}`);
  assert.ok(sum(after_, 'registrar_registration_batch_size_count', {}) > sum(before_, 'registrar_registration_batch_size_count', {}));
  // The job worker reads the queue's depth every 2 s: the email tasks show up shortly.
  // The job worker reads the queue and its thread pool every 2 s; the 40 emails are counted as
  // sent once they are.
  const sent = (samples: ReturnType<typeof parsePrometheusText>) => sum(samples, 'registrar_emails_total', { outcome: 'sent' });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const now = await scrape();
    const queueSeen = now.some((s) => s.name === 'registrar_jobs' && s.labels.task === 'send_email')
      && ['registrar_job_oldest_queued_seconds', 'registrar_thread_pool_queued', 'registrar_thread_pool_utilization'].every((name) => now.some((s) => s.name === name));
    if (queueSeen && sent(now) - sent(before_) === 40) break;
    assert.ok(Date.now() < deadline, `queue gauges ${queueSeen ? '' : 'missing, '}${sent(now) - sent(before_)} of 40 emails counted as sent`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  // The email send window: one series, the job worker's, a whole number of emails.
  const windows = (await scrape()).filter((s) => s.name === 'registrar_email_send_window');
  assert.equal(windows.length, 1, JSON.stringify(windows));
  assert.ok(Number.isInteger(windows[0]!.value) && windows[0]!.value >= 1, `send window ${windows[0]!.value}`);
});

test('uPlot is served from the package with a long cache header, under the page\'s CSP', async () => {
  const login = await fetch(`${baseUrl}/dashboard/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: TEST_ADMIN_TOKEN }) });
  assert.equal(login.status, 204);
  const page = await fetch(`${baseUrl}/dashboard`, { headers: { cookie: (login.headers.get('set-cookie') ?? '').split(';')[0]! } });
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'; style-src 'self'/);
  const html = await page.text();
  const js = /<script src="(\/dashboard\/vendor\/uplot-[\d.]+\.iife\.min\.js)"/.exec(html)?.[1];
  const css = /<link rel="stylesheet" href="(\/dashboard\/vendor\/uplot-[\d.]+\.min\.css)"/.exec(html)?.[1];
  assert.ok(js && css, 'the page links uPlot from the service');
  for (const [asset, type] of [[js, /text\/javascript/], [css, /text\/css/]] as const) {
    const answer = await fetch(`${baseUrl}${asset}`);
    assert.equal(answer.status, 200, asset);
    assert.match(answer.headers.get('content-type') ?? '', type);
    assert.match(answer.headers.get('cache-control') ?? '', /max-age=31536000/);
    assert.ok((await answer.text()).length > 1000, `${asset} has uPlot in it`);
  }
  assert.match(await (await fetch(`${baseUrl}${js}`)).text(), /uPlot/);
});

test('the dashboard refuses a request without the admin login', async () => {
  const page = await fetch(`${baseUrl}/dashboard`);
  assert.equal(page.status, 401);
  assert.match(await page.text(), /Admin token/);
  const events = await fetch(`${baseUrl}/dashboard/events`);
  assert.equal(events.status, 401);
  const forged = await fetch(`${baseUrl}/dashboard/events`, { headers: { cookie: 'registrar_dashboard=9999999999.forged' } });
  assert.equal(forged.status, 401);
  const wrong = await fetch(`${baseUrl}/dashboard/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'not-the-token' }) });
  assert.equal(wrong.status, 401);
});

test('in a real browser: log in, then worker lanes and counters change under load, and a worker\'s restart shows, without a reload', async () => {
  const page = await (await openBrowser()).newPage();
  // The page's CSP is strict (script-src 'self', style-src 'self'): uPlot must run under it.
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    // A failed load is judged by its response below (the login page is a 401 on purpose).
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) pageErrors.push(message.text());
  });
  page.on('response', (response) => {
    const url = new URL(response.url());
    if (response.status() >= 400 && url.pathname !== '/favicon.ico' && !(response.status() === 401 && url.pathname === '/dashboard')) pageErrors.push(`${response.status()} ${url.pathname}`);
  });
  await page.goto(`${baseUrl}/dashboard`);
  await page.fill('#token', TEST_ADMIN_TOKEN);
  await page.click('button[type=submit]');
  await page.waitForSelector('.status.live', { timeout: 30_000 });
  // One lane per process: two HTTP workers and the job worker.
  await page.waitForFunction(() => document.querySelectorAll('#lanes .lane').length === 3, undefined, { timeout: 30_000 });
  assert.equal(await page.locator('#waiting-rooms').isHidden(), true, 'no course has a queue: no waiting-rooms table');
  const marker = await page.evaluate(() => {
    (window as unknown as { marker: number }).marker = 42; // survives only if the page is never reloaded
    return document.querySelector('#courses tbody')?.textContent ?? '';
  });

  // What the job worker's lane says while the load's emails go out, gathered as the page shows it.
  await page.evaluate(() => {
    const seen = new Set<string>();
    (window as unknown as { jobPhases: Set<string> }).jobPhases = seen;
    setInterval(() => {
      for (const lane of document.querySelectorAll('#lanes .lane')) {
        if (!(lane.querySelector('.lane-title')?.textContent ?? '').startsWith('Job worker')) continue;
        for (const chip of lane.querySelectorAll('.phases span')) seen.add((chip.textContent ?? '').replace(/^\d+ /, ''));
      }
    }, 50);
  });
  const course = await newCourse(client, { capacity: 5000, waitlistCapacity: 0, title: '<img src=x onerror=alert(1)> Load' });
  // Watched while the load runs: an HTTP worker's lane with requests in flight, and the
  // throughput figure above zero. The page changes by itself, or these time out.
  const sawInFlight = page.waitForFunction(() => [...document.querySelectorAll('#lanes .lane')].some((lane) =>
    (lane.querySelector('.lane-title')?.textContent ?? '').startsWith('HTTP worker') && parseInt(lane.querySelector('.count')?.textContent ?? '0', 10) > 0), undefined, { timeout: 60_000 });
  const sawThroughput = page.waitForFunction(() => parseInt(document.querySelector('#rps')?.textContent ?? '0', 10) > 0, undefined, { timeout: 60_000 });
  // Waves of 100 registrations at once until the lanes have shown requests in flight.
  let sent = 0;
  let loading = true;
  const load = (async () => {
    while (loading && sent < 4_000) {
      const wave = Array.from({ length: 100 }, (_, i) => ({ ...student(course, sent + i, 'dash'), name: `<b>Student ${sent + i}</b>` }));
      sent += wave.length;
      const answers = await Promise.all(wave.map((body) => client.register(body)));
      assert.ok(answers.every((a) => a.status === 201), JSON.stringify(answers.find((a) => a.status !== 201)?.body));
    }
  })();
  try {
    await Promise.all([sawInFlight, sawThroughput]);
  } finally {
    loading = false;
    await load;
  }
  await page.waitForFunction(([id, taken]) => [...document.querySelectorAll('#courses tbody tr')].some((tr) => tr.textContent?.includes(id) && tr.textContent.includes(`${taken} / 5000`)), [course, sent] as const, { timeout: 30_000 });
  const state = await page.evaluate(() => ({
    marker: (window as unknown as { marker?: number }).marker,
    courses: document.querySelector('#courses tbody')?.textContent ?? '',
    injected: document.querySelectorAll('#courses img, #lanes b, #mail b, #mail img').length,
  }));
  assert.equal(state.marker, 42, 'the page was not reloaded');
  assert.notEqual(state.courses, marker);
  assert.ok(state.courses.includes('<img src=x onerror=alert(1)> Load'), 'user text shown as text');
  assert.equal(state.injected, 0, 'user text never becomes markup');
  // The charts are uPlot's: canvases, a time axis, units on the y axes, a legend naming each series.
  const charts = await page.evaluate(() => {
    type Plot = { axes: { label?: string }[]; scales: { x: { time?: boolean } }; series: { label?: string }[]; data: (number | null)[][] };
    const plots = (window as unknown as { registrarCharts: Record<string, Plot> }).registrarCharts;
    const legend = (id: string) => document.querySelector(`#${id} .u-legend`)?.textContent ?? '';
    const describe = (plot: Plot) => ({ axes: plot.axes.map((a) => a.label ?? ''), time: plot.scales.x.time === true, series: plot.series.map((s) => s.label ?? ''), points: plot.data[0]?.length ?? 0 });
    return {
      canvases: document.querySelectorAll('#throughput canvas, #latency-chart canvas').length,
      uplots: document.querySelectorAll('#throughput .uplot, #latency-chart .uplot').length,
      throughputLegend: legend('throughput'),
      latencyLegend: legend('latency-chart'),
      throughput: describe(plots.throughput!),
      latency: describe(plots.latency!),
    };
  });
  assert.equal(charts.uplots, 2, 'two uPlot charts');
  assert.ok(charts.canvases >= 2, 'drawn on canvases');
  for (const series of ['p50', 'p90', 'p99']) assert.ok(charts.latencyLegend.includes(series), `latency legend names ${series}: ${charts.latencyLegend}`);
  assert.ok(charts.throughputLegend.includes('requests'), charts.throughputLegend);
  assert.deepEqual(charts.latency.axes, ['time', 'latency (ms)']);
  assert.deepEqual(charts.throughput.axes, ['time', 'requests/s']);
  assert.ok(charts.latency.time && charts.throughput.time, 'time on the x axes');
  assert.equal(charts.throughput.points, 60, 'the last minute, a point a second');
  assert.deepEqual(pageErrors, [], 'no script error, no CSP violation');
  await mkdir(ARTIFACTS, { recursive: true });
  await page.locator('section.charts').screenshot({ path: path.join(ARTIFACTS, 'dashboard-charts.png') });
  // This load's emails reach the built-in mailbox on the page.
  await page.waitForFunction(() => [...document.querySelectorAll('#mail li')].some((li) => /dash\d+@example\.org/.test(li.textContent ?? '')), undefined, { timeout: 60_000 });
  // The course's recent history: its registrations' entries, then an admin's capacity change,
  // newest first, shown for the course chosen in the selector without a reload.
  await page.selectOption('#history-course', course);
  await page.waitForFunction(() => [...document.querySelectorAll('#history li')].some((li) => (li.textContent ?? '').includes('enrolled by student: enrolled: a seat was free')), undefined, { timeout: 30_000 });
  assert.equal((await client.admin('PATCH', `/courses/${course}`, { capacity: 6000 })).status, 200);
  await page.waitForFunction(() => (document.querySelector('#history li')?.textContent ?? '').includes('capacity-changed by admin: capacity 5000 → 6000'), undefined, { timeout: 30_000 });
  // Each email in the lane is named by what it waits for, never a job's bare "sending email".
  const jobPhases = await page.evaluate(() => [...(window as unknown as { jobPhases: Set<string> }).jobPhases]);
  const known = ['waiting: rush pacing', 'waiting for an email slot', 'waiting for the database', 'writing email to the mailbox', 'calling a webhook'];
  assert.deepEqual(jobPhases.filter((phase) => !known.includes(phase)), [], `job lane phases: ${JSON.stringify(jobPhases)}`);
  // A worker killed: the page shows its exit as it happens, and its replacement's lane.
  const victim = await page.evaluate(() => Number(document.querySelector('#lanes .lane')?.getAttribute('data-pid')));
  assert.ok(victim > 0);
  process.kill(victim, 'SIGKILL');
  await page.waitForFunction((pid) => [...document.querySelectorAll('#restarts li')].some((li) => (li.textContent ?? '').includes(`worker ${pid} exited (SIGKILL)`)), victim, { timeout: 30_000 });
  await page.waitForFunction((pid) => document.querySelectorAll('#lanes .lane').length === 3 && !document.querySelector(`#lanes .lane[data-pid="${pid}"]`), victim, { timeout: 60_000 });
  assert.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 42, 'still without a reload');
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });
});

test('a waiting room on the dashboard and /metrics: its places by status through joins, the job worker\'s admissions and sold-out', async () => {
  const course = await newCourse(client, { capacity: 3, waitlistCapacity: 0, opensAt: new Date(Date.now() + 3_600_000).toISOString(), queue: { order: 'arrival' } });
  const joined: { id: string; email: string; queueToken: string }[] = [];
  for (let i = 0; i < 8; i++) {
    const email = `room${i}@example.org`;
    const answer = await client.request('POST', `/courses/${course}/queue`, { body: { name: `Student ${i}`, email } });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    joined.push({ id: answer.body.id, email, queueToken: answer.body.queueToken });
  }
  // Each series once, whatever the number of workers: only the job worker reports them.
  const figures = async () => {
    const samples = (await scrape()).filter((s) => s.name.startsWith('registrar_queue_') && s.labels.course === course);
    const keys = samples.map((s) => `${s.name}${JSON.stringify(s.labels)}`);
    assert.equal(new Set(keys).size, keys.length, `one sample per series: ${keys.join(', ')}`);
    const value = (name: string, status?: string) => samples.find((s) => s.name === name && (status === undefined || s.labels.status === status))?.value;
    return {
      places: Object.fromEntries(['unverified', 'waiting', 'admitted', 'registered', 'expired', 'sold-out', 'left', 'closed'].map((status) => [status, value('registrar_queue_places', status)])),
      ordered: value('registrar_queue_ordered'),
      admitted: value('registrar_queue_admitted_total'),
      rate: value('registrar_queue_admission_rate'),
      soldOutSince: value('registrar_queue_sold_out_timestamp_seconds'),
    };
  };
  const none = { unverified: 0, waiting: 0, admitted: 0, registered: 0, expired: 0, 'sold-out': 0, left: 0, closed: 0 };
  assert.deepEqual(await figures(), { places: { ...none, waiting: 8 }, ordered: 0, admitted: 0, rate: 0, soldOutSince: undefined });

  const page = await (await openBrowser()).newPage();
  await page.goto(`${baseUrl}/dashboard`);
  if (await page.locator('#token').count()) {
    await page.fill('#token', TEST_ADMIN_TOKEN);
    await page.click('button[type=submit]');
  }
  /** The table's row of the course, cell by cell, once it reads `expected` (the page updates itself). */
  const row = (expected: string[]) => page.waitForFunction(([id, cells]) => {
    const tr = document.querySelector(`#waiting-rooms-table tr[data-course="${id}"]`);
    const shown = [...(tr?.querySelectorAll('td') ?? [])].map((td) => td.textContent ?? '');
    return cells.every((cell, i) => cell === '*' || shown[i] === cell) && shown;
  }, [course, expected] as const, { timeout: 30_000 }).then((handle) => handle.jsonValue());
  //                course   state                         waiting unverified admitted registered expired left sold-out closed rate
  await row([course, 'joining (not ordered yet)', '8', '0', '0', '0', '0', '0', '0', '0', '0/s']);
  assert.equal(await page.locator('#waiting-rooms').isVisible(), true);

  // Opened: the job worker's ticker orders the places and admits as many as the seats.
  assert.equal((await client.admin('PATCH', `/courses/${course}`, { opensAt: new Date(Date.now() - 1_000).toISOString() })).status, 200);
  await eventually(figures, (f) => f.places.admitted === 3);
  const admission = async (place: (typeof joined)[number]) => (await client.request('GET', `/queue/${place.id}`, { token: place.queueToken })).body.admission as string;
  for (const place of joined.slice(0, 2)) {
    const answer = await client.request('POST', '/register', { body: { name: 'A Student', email: place.email, course, admission: await admission(place) } });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
  }
  assert.equal((await client.request('DELETE', `/queue/${joined[7]!.id}`, { token: joined[7]!.queueToken })).status, 200);
  const admitting = await eventually(figures, (f) => f.places.registered === 2);
  assert.deepEqual({ ...admitting, rate: undefined }, { places: { ...none, waiting: 4, admitted: 1, registered: 2, left: 1 }, ordered: 1, admitted: 3, rate: undefined, soldOutSince: undefined });
  assert.ok(admitting.rate! > 0, `admissions per second ${admitting.rate}`);
  await row([course, 'admitting', '4', '0', '1', '2', '0', '1', '0', '0', '*']);

  // The last seat taken: the next tick sells out every waiting place at once.
  const last = await client.request('POST', '/register', { body: { name: 'A Student', email: joined[2]!.email, course, admission: await admission(joined[2]!) } });
  assert.equal(last.status, 201, JSON.stringify(last.body));
  const soldOut = await eventually(figures, (f) => f.places['sold-out'] === 4);
  assert.deepEqual(soldOut.places, { ...none, registered: 3, 'sold-out': 4, left: 1 });
  assert.ok(soldOut.soldOutSince! * 1000 <= Date.now() && soldOut.soldOutSince! * 1000 > Date.now() - 60_000, `sold out since ${soldOut.soldOutSince}`);
  const shown = await row([course, '*', '0', '0', '0', '3', '0', '1', '4', '0', '*']);
  assert.match((shown as string[])[1]!, /^sold out since /);
  await mkdir(ARTIFACTS, { recursive: true });
  await page.locator('#waiting-rooms').screenshot({ path: path.join(ARTIFACTS, 'dashboard-waiting-rooms.png') });
  await page.close();
});
