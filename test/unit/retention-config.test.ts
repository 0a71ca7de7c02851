// RETENTION_DAYS: 180 by default, a whole number of days from 1; anything else stops the start
// with a message that names the variable.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { spawnService } from '../support/service-process.ts';

test('RETENTION_DAYS is 180 unless set, and takes any whole number of days from 1', () => {
  assert.equal(loadConfig({}).retentionDays, 180);
  assert.equal(loadConfig({ RETENTION_DAYS: '1' }).retentionDays, 1);
  assert.equal(loadConfig({ RETENTION_DAYS: ' 30 ' }).retentionDays, 30);
});

test('RETENTION_DAYS of 0, negative, fractional or not a number is a configuration error naming it', () => {
  for (const value of ['0', '-5', '1.5', 'forever', '1e9']) {
    assert.throws(() => loadConfig({ RETENTION_DAYS: value }), (error: unknown) => error instanceof ConfigError && /RETENTION_DAYS must be a whole number from 1 to 36500; got/.test(error.message), value);
  }
});

test('the service refuses to start with a bad RETENTION_DAYS and says why', async () => {
  const service = spawnService({ via: 'node', env: { RETENTION_DAYS: 'forever' } });
  const exit = await service.exited;
  assert.equal(exit.code, 2, service.output());
  assert.match(service.output(), /Configuration error: RETENTION_DAYS must be a whole number from 1 to 36500; got "forever"/);
});
