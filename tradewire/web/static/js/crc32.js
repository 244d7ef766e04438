// CRC32 (IEEE 802.3, the polynomial zlib uses), as an unsigned 32-bit number.
//
// tradewire's depth diffs carry `cs`, the CRC32 of the exchange's top levels written as ASCII text
// (see checksum.js); the page computes the same number over its own book to prove it is identical.

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC32 of an ASCII string (each character one byte), as zlib.crc32 gives it: 0 .. 2**32 - 1. */
export function crc32(text) {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) {
    crc = TABLE[(crc ^ text.charCodeAt(i)) & 0xff] ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}
