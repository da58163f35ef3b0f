/** Name-based UUIDs (RFC 9562 version 5: SHA-1 of a namespace UUID and a name). */
import { createHash } from 'node:crypto';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function uuidBytes(uuid: string): Buffer {
  if (!UUID_RE.test(uuid)) throw new RangeError(`"${uuid}" is not a UUID`);
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

/**
 * Returns a function computing version-5 UUIDs in `namespace`. The same name always gives the same
 * UUID, so objects named this way keep their names across restarts.
 */
export function uuidV5(namespace: string): (name: string) => string {
  const ns = uuidBytes(namespace);
  return (name: string): string => {
    const h = createHash('sha1').update(ns).update(name, 'utf8').digest();
    h.writeUInt8((h.readUInt8(6) & 0x0f) | 0x50, 6);
    h.writeUInt8((h.readUInt8(8) & 0x3f) | 0x80, 8);
    const x = h.toString('hex', 0, 16);
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
  };
}
