// Webhook routes (admin): subscribe a URL to registration events, list, delete, read the log.
import Type from 'typebox';
import { createWebhook, getDeliveries, getWebhooks, removeWebhook } from '../../domain/webhooks.service.ts';
import type { App, RouteDeps } from '../app.ts';
import { problemResponses } from '../schemas/common.schemas.ts';
import { CreatedWebhook, CreateWebhookBody, Delivery, LimitQuery, toDelivery, toWebhook, Webhook, WebhookParams } from '../schemas/delivery.schemas.ts';

export function registerWebhookRoutes(app: App, { sql, auth }: RouteDeps, options: { allowPrivate: boolean }): void {
  const security = [{ bearer: [] }];
  const tags = ['webhooks'];

  app.post('/webhooks', {
    onRequest: auth.requireAdmin,
    schema: { tags, security, summary: 'Subscribe a URL to registration events (admin); the secret is shown once', body: CreateWebhookBody, response: { 201: CreatedWebhook, ...problemResponses(400, 401) } },
  }, async function createWebhookRoute(request, reply) {
    const row = await createWebhook(sql, request.body, options);
    return reply.code(201).send({ ...toWebhook(row), secret: row.secret });
  });

  app.get('/webhooks', {
    onRequest: auth.requireAdmin,
    schema: { tags, security, summary: 'List webhooks (admin)', response: { 200: Type.Array(Webhook), ...problemResponses(401) } },
  }, async function listWebhooksRoute() {
    return (await getWebhooks(sql)).map(toWebhook);
  });

  app.delete('/webhooks/:id', {
    onRequest: auth.requireAdmin,
    schema: { tags, security, summary: 'Delete a webhook and its delivery log (admin)', params: WebhookParams, response: { 204: Type.Null(), ...problemResponses(400, 401, 404) } },
  }, async function deleteWebhookRoute(request, reply) {
    await removeWebhook(sql, request.params.id);
    return reply.code(204).send(null);
  });

  app.get('/webhooks/:id/deliveries', {
    onRequest: auth.requireAdmin,
    schema: { tags, security, summary: 'The delivery log of a webhook, newest first (admin)', params: WebhookParams, querystring: LimitQuery, response: { 200: Type.Array(Delivery), ...problemResponses(400, 401, 404) } },
  }, async function listDeliveriesRoute(request) {
    return (await getDeliveries(sql, request.params.id, request.query.limit ?? 100)).map(toDelivery);
  });
}
