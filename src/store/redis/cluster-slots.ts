// Which of a Redis Cluster's 16,384 slots a key belongs to: CRC16 (XMODEM) of its hash tag (the
// part between the first { and the next }, when not empty) or else of the whole key, modulo 16384.

export const CLUSTER_SLOTS = 16384;

/** CRC16-XMODEM (polynomial 0x1021) of each byte value, for one table step per byte. */
const CRC16_TABLE = Uint16Array.from({ length: 256 }, (_, byte) => {
  let crc = byte << 8;
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  return crc;
});

export function slotOfKey(key: string): number {
  const open = key.indexOf('{');
  let hashed = key;
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) hashed = key.slice(open + 1, close);
  }
  let crc = 0;
  for (let i = 0; i < hashed.length; i++) {
    const code = hashed.charCodeAt(i);
    // Redis hashes the key's bytes: beyond ASCII, those of its UTF-8 encoding.
    if (code >= 0x80) return crcOfBytes(Buffer.from(hashed)) % CLUSTER_SLOTS;
    crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[(crc >> 8) ^ code]!;
  }
  return crc % CLUSTER_SLOTS;
}

function crcOfBytes(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[(crc >> 8) ^ byte]!;
  return crc;
}
