// The page behind the link in every email: see or cancel one's registration and read its
// history (src/http/pages/manage.*).
import type { App } from '../app.ts';
import { RegistrationParams } from '../schemas/registration.schemas.ts';
import { registerStaticPage } from '../static-page.ts';

export function registerManagePageRoutes(app: App): Promise<void> {
  return registerStaticPage(app, { name: 'manage', url: '/manage/:id', params: RegistrationParams, assets: '/manage' });
}
