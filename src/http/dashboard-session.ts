// The dashboard's browser login: the admin token is entered once, checked in constant time, and
// exchanged for a session cookie (HttpOnly, SameSite=Strict, 8 hours) whose value is an expiry
// and an HMAC of it keyed by the admin token. The token itself never goes into a URL or a cookie;
// changing ADMIN_TOKEN logs every session out.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const SESSION_COOKIE = 'registrar_dashboard';
const SESSION_SECONDS = 8 * 60 * 60;

export type DashboardSessions = {
  isLoggedIn(request: FastifyRequest): boolean;
  logIn(reply: FastifyReply): void;
  logOut(reply: FastifyReply): void;
};

function readCookie(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

export function createDashboardSessions(adminToken: string, secureCookie: boolean): DashboardSessions {
  const sign = (expires: string) => createHmac('sha256', adminToken).update(`dashboard-session:${expires}`).digest('base64url');
  const attributes = `Path=/; HttpOnly; SameSite=Strict${secureCookie ? '; Secure' : ''}`;
  return {
    isLoggedIn(request) {
      const value = readCookie(request, SESSION_COOKIE);
      const [expires, signature] = value?.split('.') ?? [];
      if (!expires || !signature || !/^\d+$/.test(expires) || Number(expires) < Date.now() / 1000) return false;
      const expected = Buffer.from(sign(expires));
      const presented = Buffer.from(signature);
      return expected.length === presented.length && timingSafeEqual(expected, presented);
    },
    logIn(reply) {
      const expires = String(Math.floor(Date.now() / 1000) + SESSION_SECONDS);
      reply.header('set-cookie', `${SESSION_COOKIE}=${expires}.${sign(expires)}; Max-Age=${SESSION_SECONDS}; ${attributes}`);
    },
    logOut(reply) {
      reply.header('set-cookie', `${SESSION_COOKIE}=; Max-Age=0; ${attributes}`);
    },
  };
}
