// Bearer authentication: the admin token for admin routes; the admin token or a registration's
// manage token for that registration's routes. Tokens are compared in constant time.
import type { FastifyRequest } from 'fastify';
import { DomainError } from '../domain/domain-error.ts';
import type { RegistrationCredential } from '../domain/registration.service.ts';
import { secretsMatch } from '../security/tokens.ts';

export type Auth = {
  requireAdmin(request: FastifyRequest): Promise<void>;
  registrationCredential(request: FastifyRequest): RegistrationCredential;
};

/** RFC 6750 section 2.1: `Authorization: Bearer <token>`, scheme case-insensitive. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header);
  return match?.[1];
}

export function createAuth(adminToken: string): Auth {
  return {
    async requireAdmin(request) {
      const token = bearerToken(request);
      if (token === undefined) throw new DomainError('unauthorized', 'This route needs the admin token: Authorization: Bearer <ADMIN_TOKEN>');
      if (!secretsMatch(token, adminToken)) throw new DomainError('unauthorized', 'The admin token is not valid');
    },
    registrationCredential(request) {
      const token = bearerToken(request);
      if (token === undefined) {
        throw new DomainError('unauthorized', 'This route needs the registration\'s manage token (or the admin token): Authorization: Bearer <token>');
      }
      return secretsMatch(token, adminToken) ? { kind: 'admin' } : { kind: 'manage-token', token };
    },
  };
}
