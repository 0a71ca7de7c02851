// The manage page: the token comes from the URL fragment (never sent to a server, so never in a
// log), is used as a bearer token against the API, and every value is shown with textContent.
(function () {
  const id = location.pathname.split('/').pop();
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
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

  async function load(method) {
    if (!token) return say('This link is missing its token; use the link from your email.');
    const response = await api(method);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) return say(body.detail || `Something went wrong (${response.status}).`);
    show(body);
    await showHistory();
  }

  $('cancel').addEventListener('click', () => {
    if (confirm('Cancel this registration? Your seat goes to the next student on the waitlist.')) void load('DELETE');
  });
  void load('GET');
})();
