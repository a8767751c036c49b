// Which of a Redis Cluster's 16,384 slots a key belongs to: CRC16 (XMODEM) of its hash tag (the
// part between the first { and the next }, when not empty) or else of the whole key, modulo 16384.

export const CLUSTER_SLOTS = 16384;

export function slotOfKey(key: string): number {
  const open = key.indexOf('{');
  let hashed = key;
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) hashed = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(hashed)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % CLUSTER_SLOTS;
}
