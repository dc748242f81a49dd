/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every record the
 * message store and the definitions log write. Not zlib's crc32 (polynomial 0xEDB88320): the
 * Castagnoli polynomial detects more error patterns in the record sizes we write and x86
 * computes it in hardware (SSE4.2), which this module uses when the CPU has it. */
#ifndef WARREN_SRC_STORE_CRC32C_H
#define WARREN_SRC_STORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a checksum: crc32c_update(0, p, n) is the CRC-32C of p[0..n), and
 * crc32c_update(crc32c_update(0, a, n), b, m) that of a followed by b. */
uint32_t crc32c_update(uint32_t crc, const void *data, size_t len);

/* The same with the table-driven code only (what runs on CPUs without SSE4.2), so tests can
 * check both paths agree. */
uint32_t crc32c_update_portable(uint32_t crc, const void *data, size_t len);

static inline uint32_t crc32c(const void *data, size_t len)
{
    return crc32c_update(0, data, len);
}

#endif
