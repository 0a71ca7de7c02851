// Bearer authentication: the admin token for admin routes; the admin token or a registration's
// manage token (a queue place's queue token) for that registration's (place's) routes. Tokens
// are compared in constant time, and wrong admin tokens use up a per-client budget
// (RATE_LIMIT_PER_MINUTE, or 60 when that is 0: server.ts): once spent, the client's admin
// requests get 429 whatever their token until the window ends, so that no answer tells a guess
// right from wrong. The right token costs nothing; a missing one guesses nothing.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../domain/domain-error.ts';
import type { QueueCredential } from '../domain/queue.service.ts';
import type { RegistrationCredential } from '../domain/registration.service.ts';
import { hashToken } from '../security/tokens.ts';
import type { FailureBudget } from './rate-limit.ts';

export type Auth = {
  /** An onRequest hook: 401 without the admin token, 429 when the client's wrong guesses used up its budget. */
  requireAdmin(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined>;
  registrationCredential(request: FastifyRequest): RegistrationCredential;
  queueCredential(request: FastifyRequest): QueueCredential;
};

/** RFC 6750 section 2.1: `Authorization: Bearer <token>`, scheme case-insensitive. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header);
  return match?.[1];
}

const presentedHashes = new WeakMap<FastifyRequest, Buffer>();

/** The SHA-256 of the request's bearer token, made once per request (the load shedder and the
 *  route's credential both look the token up by it). */
export function bearerTokenHash(request: FastifyRequest, token: string): Buffer {
  let hash = presentedHashes.get(request);
  if (hash === undefined) {
    hash = hashToken(token);
    presentedHashes.set(request, hash);
  }
  return hash;
}

export function createAuth(adminToken: string, failures: FailureBudget): Auth {
  // Compared as SHA-256 hashes, in constant time (equal lengths); the presented token's hash is
  // the one the route looks its token up by, so it is made once per request.
  const adminHash = hashToken(adminToken);
  /** The admin token, or the route's own token of `kind` (with its hash); `missing` says which when there is none. */
  function credential<K extends string>(request: FastifyRequest, kind: K, missing: string): { kind: 'admin' } | { kind: K; token: string; tokenHash: Buffer } {
    const token = bearerToken(request);
    if (token === undefined) throw new DomainError('unauthorized', missing);
    const tokenHash = bearerTokenHash(request, token);
    return timingSafeEqual(tokenHash, adminHash) ? { kind: 'admin' } : { kind, token, tokenHash };
  }
  return {
    async requireAdmin(request, reply) {
      if (failures.refused(request, reply)) return reply;
      const token = bearerToken(request);
      if (token === undefined) throw new DomainError('unauthorized', 'This route needs the admin token: Authorization: Bearer <ADMIN_TOKEN>');
      if (!timingSafeEqual(hashToken(token), adminHash)) {
        failures.failed(request);
        throw new DomainError('unauthorized', 'The admin token is not valid');
      }
      return undefined;
    },
    registrationCredential: (request) => credential(request, 'manage-token', 'This route needs the registration\'s manage token (or the admin token): Authorization: Bearer <token>'),
    queueCredential: (request) => credential(request, 'queue-token', 'This route needs the place\'s queue token (or the admin token): Authorization: Bearer <token>'),
  };
}
