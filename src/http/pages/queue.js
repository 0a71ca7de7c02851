// The queue page: follows one place through GET /queue/{id}/events (read with fetch, since an
// EventSource cannot send the token as a header), reconnecting with backoff when the stream
// drops, and registers with the admission once admitted. The token comes from the URL fragment
// (never sent to a server, so never in a log); every value is shown with textContent.
(function () {
  const id = location.pathname.split('/')[2];
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  const auth = { authorization: `Bearer ${token}` };
  const FINAL = new Set(['registered', 'expired', 'sold-out', 'left', 'closed']);
  const STATUS_TEXT = {
    unverified: 'waiting for your email address to be confirmed',
    waiting: 'waiting',
    admitted: 'admitted: register now',
    registered: 'registered',
    expired: 'admission expired',
    'sold-out': 'sold out',
    left: 'left the queue',
    closed: 'registration closed',
  };
  const MESSAGES = {
    unverified: 'Your place counts once your email address is confirmed: open the link in the email we sent you.',
    waiting: 'Keep this page open: it follows your place live. You may also come back later with the same link.',
    admitted: 'It is your turn. Register before the time runs out.',
    registered: 'You are registered through the queue.',
    expired: 'Your admission expired before you registered; your place went on to the next student.',
    'sold-out': 'Sorry: every seat and waitlist place of this course is taken. Nobody behind you will get one either.',
    left: 'You left the queue.',
    closed: 'Sorry: registration for this course closed before your turn to register came or was used.',
  };
  const $ = (name) => document.getElementById(name);
  let place;
  let estimateEndsAt;
  let lastEventId;
  let verifyTried = false;
  let registering = false;
  const idempotencyKey = `queue-page-${Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, '0')).join('')}`;

  const say = (text) => { $('message').textContent = text; };
  const connection = (text) => { $('connection').textContent = text; };
  const seconds = (ms) => Math.max(0, Math.ceil(ms / 1000));
  function duration(total) {
    if (total >= 3600) return `${Math.floor(total / 3600)} h ${Math.floor((total % 3600) / 60)} min`;
    const minutes = Math.floor(total / 60);
    return minutes > 0 ? `${minutes} min ${String(total % 60).padStart(2, '0')} s` : `${total} s`;
  }

  function showClocks() {
    if (!place) return;
    const estimate = estimateEndsAt === undefined ? undefined : seconds(estimateEndsAt - Date.now());
    $('estimate').textContent = estimate === undefined ? 'not known yet' : estimate === 0 ? 'any moment now' : `about ${duration(estimate)}`;
    if (place.status === 'admitted' && place.admittedUntil) {
      const left = seconds(Date.parse(place.admittedUntil) - Date.now());
      $('time-left').textContent = duration(left);
      $('register').disabled = registering || left === 0;
    }
  }

  function show(next) {
    place = next;
    document.body.dataset.status = place.status;
    if (!courseTitle) courseTitle = showCourseTitle(place.course);
    $('status').textContent = STATUS_TEXT[place.status] || place.status;
    $('position').textContent = place.position === null ? 'given when registration opens' : String(place.position);
    $('ahead').textContent = place.ahead === null ? '' : String(place.ahead);
    estimateEndsAt = place.estimatedWaitSeconds === null ? undefined : Date.now() + place.estimatedWaitSeconds * 1000;
    $('details').hidden = false;
    $('register').hidden = place.status !== 'admitted';
    if ($('confirmation').hidden || place.status !== 'registered') say(MESSAGES[place.status] || '');
    showClocks();
    if (place.status === 'unverified' && !verifyTried) void verify();
  }

  // The course's title is public (GET /courses/{id}); until it is in, or if it cannot be had, the id.
  let courseTitle;
  async function showCourseTitle(course) {
    $('course').textContent = course;
    const response = await fetch(`/courses/${encodeURIComponent(course)}`).catch(() => undefined);
    const body = response && response.ok ? await response.json().catch(() => ({})) : {};
    if (body.title) $('course').textContent = `${body.title} (${course})`;
  }

  async function problemText(response) {
    const body = await response.json().catch(() => ({}));
    return body.detail || `Something went wrong (${response.status}).`;
  }

  // Opening the emailed link is what confirms the address; a service without the route
  // (404 not-found) leaves the place as it is.
  async function verify() {
    verifyTried = true;
    const response = await fetch(`/queue/${encodeURIComponent(id)}/verify`, { method: 'POST', headers: auth }).catch(() => undefined);
    if (response && response.ok) show(await response.json());
  }

  async function register() {
    registering = true;
    showClocks();
    // One key per page: pressing again after a lost answer gets the first answer, with its link.
    const response = await fetch('/register', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
      body: JSON.stringify({ name: place.name, email: place.email, course: place.course, admission: place.admission }),
    }).catch(() => undefined);
    registering = false;
    if (!response) {
      say('The service did not answer; press Register again.');
      return showClocks();
    }
    const body = await response.json().catch(() => ({}));
    if (response.status === 201) {
      $('outcome').textContent = body.status === 'waitlisted'
        ? `You are on the waitlist of ${body.course}, position ${body.waitlistPosition}.`
        : `You are enrolled in ${body.course}.`;
      $('manage').href = `/manage/${encodeURIComponent(body.id)}#token=${encodeURIComponent(body.manageToken)}`;
      $('manage-line').hidden = false;
    } else if (response.status === 200) {
      $('outcome').textContent = `You are already registered for ${body.course}; we emailed you a link to see your registration.`;
    } else {
      say(body.detail || `Something went wrong (${response.status}).`);
      return showClocks();
    }
    $('confirmation').hidden = false;
    $('register').hidden = true;
    say(MESSAGES.registered);
  }

  /** Reads one stream to its end; parses server-sent events (the WHATWG format). */
  async function follow(signal) {
    const headers = { ...auth, accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) };
    const response = await fetch(`/queue/${encodeURIComponent(id)}/events`, { headers, signal, cache: 'no-store' });
    if (!response.ok) return { status: response.status, text: await problemText(response), retryAfter: Number(response.headers.get('retry-after')) };
    connection('Live.');
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { status: 200 };
      watchdog();
      buffer = (buffer + value).replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('id:')) lastEventId = line.slice(3).trim();
          else if (line.startsWith('data:')) data += line.slice(5).trimStart();
        }
        if (data) show(JSON.parse(data));
      }
    }
  }

  // Keep-alive comments come every 15 s: a stream silent for longer is dead (a lost network).
  let controller;
  let silence;
  function watchdog() {
    clearTimeout(silence);
    silence = setTimeout(() => controller && controller.abort(), 45_000);
  }

  async function run() {
    let delayMs = 1000;
    for (;;) {
      controller = new AbortController();
      watchdog();
      const result = await follow(controller.signal).catch(() => ({ status: 0 }));
      clearTimeout(silence);
      if (place && FINAL.has(place.status)) return connection('');
      if (result.status === 401 || result.status === 404 || result.status === 400) {
        say(result.text);
        return connection('');
      }
      if (result.status === 200) delayMs = 1000; // the stream ran: a worker restarted or stopped
      const waitMs = result.retryAfter > 0 ? result.retryAfter * 1000 : delayMs * (0.5 + Math.random());
      connection(`Reconnecting in ${seconds(waitMs)} s...`);
      await new Promise((resolve) => setTimeout(resolve, waitMs));
      delayMs = Math.min(delayMs * 2, 30_000);
    }
  }

  if (!token) return say('This link is missing its token; use the link from your email.');
  $('register').addEventListener('click', () => void register());
  setInterval(showClocks, 1000);
  void run();
})();
