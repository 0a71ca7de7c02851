// Many texts as one buffer, so a thread hands a batch's results back as a single transfer (the
// memory moves, nothing is copied or serialized per text) instead of a structured clone of every
// string. The layout: the count, each text's byte length (32-bit, little-endian), then the texts'
// UTF-8 bytes one after the other.

/** The texts in one buffer with its own memory (transferable: not a slice of Buffer's pool). */
export function packTexts(texts: readonly string[]): Uint8Array {
  const lengths = texts.map((text) => Buffer.byteLength(text));
  const header = 4 * (texts.length + 1);
  const packed = Buffer.allocUnsafeSlow(header + lengths.reduce((sum, n) => sum + n, 0));
  packed.writeUInt32LE(texts.length, 0);
  let offset = header;
  for (const [i, text] of texts.entries()) {
    packed.writeUInt32LE(lengths[i]!, 4 * (i + 1));
    offset += packed.write(text, offset);
  }
  return packed;
}

/** The texts of a packed buffer, each a view of its bytes (no copy), in order. */
export function unpackTexts(packed: Uint8Array): Buffer[] {
  const bytes = Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
  const count = bytes.readUInt32LE(0);
  const texts: Buffer[] = [];
  let offset = 4 * (count + 1);
  for (let i = 0; i < count; i++) {
    const length = bytes.readUInt32LE(4 * (i + 1));
    texts.push(bytes.subarray(offset, offset + length));
    offset += length;
  }
  return texts;
}
