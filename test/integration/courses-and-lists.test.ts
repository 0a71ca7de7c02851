// The course routes and the admin list as SPEC.md words them: the course's shape in the list and
// alone, every field PATCH can change (and what it refuses), the registration list paged by its
// cursor without a gap or a repeat, and the OpenAPI document built from the validating schemas.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { newCourse, student } from '../support/factories.ts';
import { assertInvariants } from '../support/invariants.ts';
import { useStack } from '../support/stack.ts';

const stack = useStack();

const COURSE_FIELDS = ['capacity', 'closesAt', 'enrolled', 'id', 'offerHours', 'offered', 'opensAt', 'promotion', 'queue', 'seatsLeft', 'term', 'title', 'waitlistCapacity', 'waitlisted'];

describe('courses', () => {
  test('GET /courses lists every course with its seats, in the shape of GET /courses/{id}', async () => {
    const course = await newCourse(stack.server.client, { capacity: 3, waitlistCapacity: 1, title: 'Listed' });
    for (let i = 0; i < 4; i++) assert.equal((await stack.server.client.register(student(course, i, 'list'))).status, 201);
    const list = await stack.server.client.request('GET', '/courses');
    assert.equal(list.status, 200);
    assert.ok(Array.isArray(list.body), 'a JSON array of courses');
    const listed = list.body.find((c: { id: string }) => c.id === course);
    assert.deepEqual(Object.keys(listed).sort(), COURSE_FIELDS);
    assert.deepEqual(listed, {
      id: course, title: 'Listed', capacity: 3, waitlistCapacity: 1, enrolled: 3, waitlisted: 1, seatsLeft: 0, opensAt: null, closesAt: null, queue: null, term: null,
      promotion: 'automatic', offerHours: 48, offered: 0,
    });
    assert.deepEqual((await stack.server.client.request('GET', `/courses/${course}`)).body, listed);
  });

  test('PATCH changes the title and the opening window, and lowers the waitlist only as far as it is used', async () => {
    const course = await newCourse(stack.server.client, { capacity: 1, waitlistCapacity: 3 });
    for (let i = 0; i < 3; i++) await stack.server.client.register(student(course, i, 'patch')); // 1 enrolled, 2 waitlisted
    const opensAt = new Date(Date.now() + 3_600_000).toISOString();
    const closesAt = new Date(Date.now() + 7_200_000).toISOString();
    const changed = await stack.server.client.admin('PATCH', `/courses/${course}`, { title: 'Renamed', opensAt, closesAt, waitlistCapacity: 2 });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.deepEqual({ title: changed.body.title, opensAt: changed.body.opensAt, closesAt: changed.body.closesAt, waitlistCapacity: changed.body.waitlistCapacity },
      { title: 'Renamed', opensAt, closesAt, waitlistCapacity: 2 });
    // Not open yet: a newcomer is refused as closed, and nothing is stored.
    const early = await stack.server.client.register(student(course, 9, 'patch'));
    assert.equal(early.status, 409);
    assert.equal(early.body.type, '/problems/registration-closed');

    for (const [body, why] of [
      [{ waitlistCapacity: 1 }, 'two students are waitlisted'],
      [{ capacity: 0 }, 'one student is enrolled'],
    ] as const) {
      const refused = await stack.server.client.admin('PATCH', `/courses/${course}`, body);
      assert.equal(refused.status, 409, why);
      assert.equal(refused.body.type, '/problems/conflict');
    }
    const bad = await stack.server.client.admin('PATCH', `/courses/${course}`, { opensAt: closesAt, closesAt: opensAt });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.type, '/problems/validation');
    const now = (await stack.server.client.request('GET', `/courses/${course}`)).body;
    assert.deepEqual({ capacity: now.capacity, waitlistCapacity: now.waitlistCapacity, enrolled: now.enrolled, waitlisted: now.waitlisted, opensAt: now.opensAt },
      { capacity: 1, waitlistCapacity: 2, enrolled: 1, waitlisted: 2, opensAt }, 'refused changes changed nothing');

    const reopened = await stack.server.client.admin('PATCH', `/courses/${course}`, { opensAt: null, closesAt: null });
    assert.equal(reopened.status, 200);
    assert.equal((await stack.server.client.register(student(course, 9, 'patch'))).status, 409, 'full: 1 seat, 2 of 2 waitlist places');
    await assertInvariants(stack.db.sql);
  });
});

describe('the admin registration list', () => {
  test('the cursor walks every registration once, in arrival order, page by page; the status filter holds across pages', async () => {
    const course = await newCourse(stack.server.client, { capacity: 15, waitlistCapacity: 10 });
    const created: string[] = [];
    for (let i = 0; i < 25; i++) {
      const answer = await stack.server.client.register(student(course, i, 'page'));
      assert.equal(answer.status, 201);
      created.push(answer.body.id);
    }
    type Listed = { id: string; status: string; waitlistPosition: number | null };
    // Every page through `next` until it is null; pages smaller than the list, so the cursor matters.
    async function walk(query: string, limit: number): Promise<Listed[]> {
      const items: Listed[] = [];
      let after: string | null = null;
      let pages = 0;
      do {
        const answer: { status: number; body: { items: Listed[]; next: string | null } } =
          await stack.server.client.admin('GET', `/courses/${course}/registrations?limit=${limit}${query}${after ? `&after=${encodeURIComponent(after)}` : ''}`);
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        assert.ok(answer.body.items.length <= limit);
        items.push(...answer.body.items);
        after = answer.body.next;
        pages += 1;
        assert.ok(pages < 100);
      } while (after !== null);
      return items;
    }
    const all = await walk('', 7);
    assert.deepEqual(all.map((r) => r.id), created);
    const waitlisted = await walk('&status=waitlisted', 3);
    assert.deepEqual(waitlisted.map((r) => r.id), created.slice(15));
    assert.deepEqual(waitlisted.map((r) => r.waitlistPosition), Array.from({ length: 10 }, (_, i) => i + 1));

    const bad = await stack.server.client.admin('GET', `/courses/${course}/registrations?after=not-a-cursor`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.type, '/problems/validation');
  });
});

describe('the API document', () => {
  test('/openapi.json describes every route with the schemas that validate it; /docs serves it', async () => {
    const doc = (await stack.server.client.request('GET', '/openapi.json')).body;
    assert.match(doc.openapi, /^3\./);
    for (const [path, methods] of Object.entries({
      '/courses': ['get', 'post'], '/courses/{id}': ['get', 'patch'], '/register': ['post'],
      '/registrations/{id}': ['get', 'delete'], '/registrations/{id}/offer/accept': ['post'], '/registrations/{id}/offer/decline': ['post'], '/courses/{id}/registrations': ['get'], '/courses/{id}/registrations.csv': ['get'],
      '/imports': ['get', 'post'], '/imports/{id}': ['get'], '/webhooks': ['get', 'post'], '/webhooks/{id}': ['delete'],
      '/webhooks/{id}/deliveries': ['get'], '/admin/mail': ['get'], '/health': ['get'],
    })) {
      for (const method of methods) assert.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} is documented`);
    }
    // The register body is the validating schema: its limits are the ones the route enforces.
    const register = doc.paths['/register'].post.requestBody.content['application/json'].schema;
    const resolved = register.$ref ? doc.components.schemas[register.$ref.split('/').pop()] : register;
    assert.deepEqual([...resolved.required].sort(), ['email', 'name']);
    // One course or several: exactly one of the two, stated in the document as the route checks it.
    assert.deepEqual(resolved.anyOf, [{ required: ['course'] }, { required: ['courses'] }]);
    assert.equal(resolved.properties.courses.maxItems, 10);
    assert.equal(resolved.properties.name.maxLength, 200);
    assert.equal(resolved.properties.email.maxLength, 254);
    const tooLong = await stack.server.client.register({ name: 'x'.repeat(201), email: 'a@example.org', course: 'any' });
    assert.equal(tooLong.status, 400);
    const docs = await stack.server.client.request('GET', '/docs');
    assert.equal(docs.status, 200);
    assert.match(String(docs.body), /<html/i);
  });
});
