// Who a student is, for the rules: the name and address as registered, and the key that makes
// two registrations the same student's.

/** What makes two registrations "the same student": the address, trimmed, case-insensitive. */
export function emailKey(email: string): string {
  return email.trim().toLowerCase();
}

/** A student as registered: name trimmed and NFC-normalized, email trimmed, and its key. */
export function normalizeStudent(input: { name: string; email: string }): { name: string; email: string; emailKey: string } {
  const email = input.email.trim();
  return { name: input.name.trim().normalize('NFC'), email, emailKey: emailKey(email) };
}
