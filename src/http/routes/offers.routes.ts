// Waitlist offer routes: the student (manage token) or the admin accepts or declines the seat
// held for a registration (src/domain/offers.service.ts).
import { answerRegistrationOffer, type OfferAnswer } from '../../domain/offers.service.ts';
import type { App, RouteDeps } from '../app.ts';
import { problemResponses } from '../schemas/common.schemas.ts';
import { Registration, RegistrationParams, toRegistration } from '../schemas/registration.schemas.ts';

const SUMMARIES: Record<OfferAnswer, string> = {
  accept: 'Accept the seat offered to this waitlisted registration (manage token or admin): enrolled. Before the deadline only: after it, 409 offer-expired. Accepting again answers the same enrolled registration',
  decline: 'Decline the seat offered (manage token or admin): the registration is cancelled and the seat offered to the next on the waitlist. Declining again answers the same cancelled registration',
};

export function registerOfferRoutes(app: App, { sql, auth, limit }: RouteDeps): void {
  const security = [{ bearer: [] }];
  for (const answer of ['accept', 'decline'] as const) {
    app.post(`/registrations/:id/offer/${answer}`, {
      onRequest: limit('manage'),
      schema: { tags: ['registrations'], summary: SUMMARIES[answer], security, params: RegistrationParams, response: { 200: Registration, ...problemResponses(400, 401, 404, 409) } },
    }, async function answerOfferRoute(request) {
      return toRegistration(await answerRegistrationOffer(sql, request.params.id, auth.registrationCredential(request), answer));
    });
  }
}
