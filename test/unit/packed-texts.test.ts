// A thread's batch of texts handed back as one buffer: every text back, in order, byte for byte,
// the empty and the multi-byte ones included, in a buffer of its own that can be transferred.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { packTexts, unpackTexts } from '../../src/runtime/packed-texts.ts';

const texts = ['From: a@example.org\r\n\r\nhello', '', 'Grüße, Ådå 🎓', 'x'.repeat(70_000)];

test('packed texts unpack to the same texts, in order, empty and multi-byte ones included', () => {
  const unpacked = unpackTexts(packTexts(texts));
  assert.deepEqual(unpacked.map((b) => b.toString('utf8')), texts);
  assert.deepEqual(unpackTexts(packTexts([])), []);
});

test('the packed buffer owns its memory, so transferring it moves every text and leaves nothing behind', async () => {
  const packed = packTexts(texts.slice(0, 3));
  assert.equal(packed.byteOffset, 0);
  assert.equal(packed.buffer.byteLength, packed.byteLength, 'not a slice of a shared pool');
  const { port1, port2 } = new MessageChannel();
  const received = new Promise<Uint8Array>((resolve) => port2.once('message', resolve));
  port1.postMessage(packed, [packed.buffer as ArrayBuffer]);
  const moved = await received;
  port1.close();
  assert.equal(packed.byteLength, 0, 'the sender\'s view is detached: moved, not copied');
  assert.deepEqual(unpackTexts(moved).map((b) => b.toString('utf8')), texts.slice(0, 3));
});
