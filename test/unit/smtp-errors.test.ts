// Which SMTP failures end an email for good: only the server's refusal of this message or its
// recipient (5yz to RCPT TO or DATA). A 5yz to AUTH, STARTTLS or MAIL FROM is the configuration's
// fault, true of every message; it is retried, like 4yz replies and lost connections. The shapes
// are nodemailer's (smtp-connection's _formatError: code, response, responseCode, command).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifySmtpError, PermanentEmailError } from '../../src/jobs/email/mail-transport.ts';

/** An error as nodemailer's SMTP connection makes them (code, response, responseCode, command). */
function smtpError(message: string, fields: { code: string; responseCode?: number; command?: string }): Error {
  return Object.assign(new Error(message), fields);
}

test('a 5yz refusal of the recipient or the message is permanent; the rest is retried', () => {
  const permanent = [
    smtpError("Can't send mail - all recipients were rejected: 550 5.1.1 no such user", { code: 'EENVELOPE', responseCode: 550, command: 'RCPT TO' }),
    smtpError('Message failed: 554 5.7.1 rejected as spam', { code: 'EMESSAGE', responseCode: 554, command: 'DATA' }),
    smtpError('Data command failed: 554 5.5.1 no valid recipients', { code: 'EENVELOPE', responseCode: 554, command: 'DATA' }),
  ];
  const temporary = [
    smtpError('Invalid login: 535 5.7.8 Authentication credentials invalid', { code: 'EAUTH', responseCode: 535, command: 'AUTH PLAIN' }),
    smtpError('Mail command failed: 530 5.7.0 Must issue a STARTTLS command first', { code: 'EENVELOPE', responseCode: 530, command: 'MAIL FROM' }),
    smtpError('Mail command failed: 553 5.7.1 sender not owned by the authenticated user', { code: 'EENVELOPE', responseCode: 553, command: 'MAIL FROM' }),
    smtpError('Error upgrading connection with STARTTLS: 554 TLS not available', { code: 'ETLS', responseCode: 554, command: 'STARTTLS' }),
    smtpError('451 4.3.0 try again later', { code: 'EENVELOPE', responseCode: 451, command: 'RCPT TO' }),
    smtpError('Connection closed unexpectedly', { code: 'ECONNECTION' }),
    smtpError('Greeting never received', { code: 'ETIMEDOUT', command: 'CONN' }),
  ];
  for (const error of permanent) assert.ok(classifySmtpError(error) instanceof PermanentEmailError, error.message);
  for (const error of temporary) assert.ok(!(classifySmtpError(error) instanceof PermanentEmailError), error.message);
});
