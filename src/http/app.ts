// The Fastify instance type the routes are written against, and what every route may use.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance, onRequestHookHandler, onSendHookHandler, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { Sql } from '../db/database.ts';
import type { Auth } from './auth.ts';

export type App = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

export type RouteDeps = {
  sql: Sql;
  auth: Auth;
  /** The rate-limit hooks of a class of routes (none when RATE_LIMIT_PER_MINUTE=0); each class
   * has its own budget per client (joining a queue: 'queue'). */
  limit: (routeClass: 'register' | 'queue' | 'manage' | 'login') => onRequestHookHandler[];
  /** POST /register's onSend hooks: the shedder counts the registration out of its bounds
   * (src/http/load-shedding.ts), then a not-admitted answer is held (src/http/refusal-hold.ts). */
  registerOnSend: onSendHookHandler[];
};
