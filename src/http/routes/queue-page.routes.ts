// The page behind the link in the waiting room's emails (GET /queue/{id}/page#token=...): a
// place's live position, then the Register button once admitted (src/http/pages/queue.*).
import type { App } from '../app.ts';
import { QueuePlaceParams } from '../schemas/queue.schemas.ts';
import { registerStaticPage } from '../static-page.ts';

export function registerQueuePageRoutes(app: App): Promise<void> {
  return registerStaticPage(app, { name: 'queue', url: '/queue/:id/page', params: QueuePlaceParams, assets: '/queue-page' });
}
