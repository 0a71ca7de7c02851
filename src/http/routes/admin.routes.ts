// Admin views of what happens off the request path: the built-in mailbox and the job queue.
import { readDeliveryState, readMailbox } from '../../domain/mailbox.service.ts';
import type { App, RouteDeps } from '../app.ts';
import { problemResponses } from '../schemas/common.schemas.ts';
import { DeliveryState, MailPage, MailQuery, toDeliveryState, toMailMessage } from '../schemas/delivery.schemas.ts';

export function registerAdminRoutes(app: App, { sql, auth }: RouteDeps): void {
  const security = [{ bearer: [] }];
  const tags = ['admin'];

  app.get('/admin/mail', {
    onRequest: auth.requireAdmin,
    schema: { tags, security, summary: 'The built-in mailbox, newest first (admin); used when SMTP_URL is unset', querystring: MailQuery, response: { 200: MailPage, ...problemResponses(400, 401) } },
  }, async function mailboxRoute(request) {
    const page = await readMailbox(sql, { to: request.query.to, after: request.query.after, limit: request.query.limit ?? 50 });
    return { items: page.rows.map(toMailMessage), next: page.next };
  });

  app.get('/admin/jobs', {
    onRequest: auth.requireAdmin,
    schema: { tags, security, summary: 'Job queue depth per task, email and webhook outcomes, recent email failures (admin)', response: { 200: DeliveryState, ...problemResponses(401) } },
  }, async function jobsRoute() {
    return toDeliveryState(await readDeliveryState(sql));
  });
}
