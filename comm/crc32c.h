/* crc32c.h - CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected), the checksum of every
 * message payload and checkpoint section. Uses the SSE4.2 crc32 instruction when the CPU has
 * it (about 8 bytes per cycle per stream), a table otherwise; both give the same value. */
#ifndef PX_CRC32C_H
#define PX_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of `len` bytes, continuing from `crc` (pass 0 to start). px_crc32c(0, "123456789", 9)
 * is 0xE3069283. */
uint32_t px_crc32c(uint32_t crc, const void *data, size_t len);

/* Copies `len` bytes from src to dst and returns the CRC-32C (continuing from `crc`) of the bytes
 * as written to dst, reading src once: a chunk at a time is copied, then checksummed while it is
 * in the first-level cache. The value is that of dst even if src changes meanwhile (another
 * process's memory). dst and src must not overlap. */
uint32_t px_crc32c_copy(uint32_t crc, void *dst, const void *src, size_t len);

#endif
