// The manage page: the token comes from the URL fragment (never sent to a server, so never in a
// log), is used as a bearer token against the API, and every value is shown with textContent.
(function () {
  const id = location.pathname.split('/').pop();
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get('token');
  // An offer email's accept or decline link names its action; it is asked about once, then dropped.
  let action = fragment.get('action');
  let countdown;
  const $ = (name) => document.getElementById(name);
  const say = (text) => { $('message').textContent = text; };
  const api = (method, suffix = '') => fetch(`/registrations/${encodeURIComponent(id)}${suffix}`, { method, headers: { authorization: `Bearer ${token}` } });
  const ACTORS = { student: 'you', admin: 'an admin', import: 'an import', system: 'the system' };

  function show(registration) {
    $('name').textContent = registration.name;
    $('email').textContent = registration.email;
    $('course').textContent = registration.course;
    $('status').textContent = registration.status === 'waitlisted'
      ? `waitlisted, position ${registration.waitlistPosition}` : registration.status;
    $('details').hidden = false;
    $('cancel').hidden = registration.status === 'cancelled';
    say(registration.status === 'cancelled' ? 'This registration is cancelled.' : '');
    showOffer(registration.offer);
  }

  // The offer's countdown, to the second; at zero the page asks the server, which decides.
  function showOffer(offer) {
    clearInterval(countdown);
    $('offer').hidden = !offer;
    if (!offer) return;
    const until = new Date(offer.until);
    $('offer-until').dateTime = offer.until;
    $('offer-until').textContent = until.toLocaleString();
    const tick = () => {
      const seconds = Math.max(0, Math.ceil((until.getTime() - Date.now()) / 1000));
      $('offer-left').textContent = `${Math.floor(seconds / 3600)} h ${Math.floor(seconds / 60) % 60} min ${seconds % 60} s`;
      if (seconds === 0) {
        clearInterval(countdown);
        setTimeout(() => void load('GET'), 1000);
      }
    };
    tick();
    countdown = setInterval(tick, 1000);
  }

  function answer(what) {
    const question = what === 'accept' ? 'Accept the seat? You will be enrolled.' : 'Decline the seat? It goes to the next student, and your registration is cancelled.';
    if (confirm(question)) void load('POST', `/offer/${what}`);
  }

  // The history: each change with its time, its reason and who made it ("why am I number 37").
  async function showHistory() {
    const response = await api('GET', '/history');
    if (!response.ok) return;
    const { items } = await response.json();
    $('entries').replaceChildren(...items.map((entry) => {
      const item = document.createElement('li');
      const time = document.createElement('time');
      time.dateTime = entry.at;
      time.textContent = new Date(entry.at).toLocaleString();
      item.append(time, ` ${entry.reason} (by ${ACTORS[entry.actor] || entry.actor})`);
      return item;
    }));
    $('history').hidden = items.length === 0;
  }

  async function load(method, suffix = '') {
    if (!token) return say('This link is missing its token; use the link from your email.');
    const response = await api(method, suffix);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      say(body.detail || `Something went wrong (${response.status}).`);
      if (suffix) void load('GET').then(() => say(body.detail || `Something went wrong (${response.status}).`));
      return;
    }
    show(body);
    await showHistory();
    if (action && body.offer) {
      const what = action;
      action = null;
      answer(what);
    }
  }

  $('accept').addEventListener('click', () => answer('accept'));
  $('decline').addEventListener('click', () => answer('decline'));

  $('cancel').addEventListener('click', () => {
    if (confirm('Cancel this registration? Your seat goes to the next student on the waitlist.')) void load('DELETE');
  });
  void load('GET');
})();
