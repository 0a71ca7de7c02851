// The swap route: the student (manage token) or the admin moves a registration to another course,
// all or nothing (src/domain/swap.service.ts).
import Type from 'typebox';
import { swapRegistration } from '../../domain/swap.service.ts';
import type { App, RouteDeps } from '../app.ts';
import { CourseId, problemResponses } from '../schemas/common.schemas.ts';
import { CreatedRegistration, Registration, RegistrationParams, toRegistration } from '../schemas/registration.schemas.ts';

const SwapBody = Type.Object({
  course: CourseId,
  wait: Type.Optional(Type.Boolean({ description: 'true: with no free seat, wait on the new course\'s waitlist (202); the swap completes when that place is promoted. false or absent: a free seat now, or nothing changes' })),
}, { additionalProperties: false });

const Swapped = Type.Object({
  registration: CreatedRegistration,
  cancelled: Registration,
});

/** registration: the new one, waitlisted (when it is promoted, the old one is cancelled in that
 * transaction); replaces: the old one, kept until then. */
const SwapWaiting = Type.Object({
  registration: CreatedRegistration,
  replaces: Registration,
});

export function registerSwapRoutes(app: App, { sql, auth, limit }: RouteDeps): void {
  app.post('/registrations/:id/swap', {
    onRequest: limit('manage'),
    schema: {
      tags: ['registrations'],
      summary: 'Swap this registration (manage token or admin; enrolled or waitlisted) for a seat in another course: in one transaction the student is enrolled there and this registration is cancelled, or nothing changes (409 naming why). With "wait": true and no free seat: 202, the new registration waits on the waitlist and the swap happens when it is promoted. The new registration has its own manage token',
      security: [{ bearer: [] }], params: RegistrationParams, body: SwapBody,
      response: { 200: Swapped, 202: SwapWaiting, ...problemResponses(400, 401, 403, 404, 409) },
    },
  }, async function swapRegistrationRoute(request, reply) {
    const result = await swapRegistration(sql, request.params.id, auth.registrationCredential(request), { course: request.body.course, wait: request.body.wait ?? false });
    const registration = { ...toRegistration(result.registration), manageToken: result.manageToken };
    if (result.kind === 'waiting') return reply.code(202).send({ registration, replaces: toRegistration(result.replaces) });
    return { registration, cancelled: toRegistration(result.cancelled) };
  });
}
