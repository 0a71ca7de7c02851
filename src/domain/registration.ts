// A registration as the API speaks it, and how it is read from the rows the database returns.
import type { RegistrationRow, RegistrationStatus } from '../db/queries/registrations.queries.ts';

export type Registration = {
  id: string;
  course: string;
  name: string;
  email: string;
  status: RegistrationStatus;
  waitlistPosition: number | null;
  createdAt: string;
};

export function toRegistration(row: RegistrationRow): Registration {
  return {
    id: row.id,
    course: row.course_id,
    name: row.name,
    email: row.email,
    status: row.status,
    waitlistPosition: row.waitlist_position === null ? null : Number(row.waitlist_position),
    createdAt: new Date(row.created_at).toISOString(),
  };
}

/** What makes two registrations "the same student": the address, trimmed, case-insensitive. */
export function emailKey(email: string): string {
  return email.trim().toLowerCase();
}

/** A student as registered: name trimmed and NFC-normalized, email trimmed, and its key. */
export function normalizeStudent(input: { name: string; email: string }): { name: string; email: string; emailKey: string } {
  const email = input.email.trim();
  return { name: input.name.trim().normalize('NFC'), email, emailKey: emailKey(email) };
}
