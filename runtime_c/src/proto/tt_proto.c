/* Serial protocol: checksums and packets (tt_proto.h, host/PROTOCOL.md). The framing is
 * tt_cobs.c, the device main loop tt_device.c. */
#include <string.h>
#include "tt_proto.h"

/* ---- checksums -------------------------------------------------------------------- */

uint16_t tt_proto_crc16(uint16_t crc, const uint8_t *data, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (int b = 0; b < 8; ++b)
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
    }
    return crc;
}

uint32_t tt_proto_crc32(uint32_t crc, const uint8_t *data, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; ++i) {
        crc ^= data[i];
        for (int b = 0; b < 8; ++b)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* ---- packets ---------------------------------------------------------------------- */

int tt_proto_parse(const uint8_t *frame, size_t n, tt_packet *p)
{
    memset(p, 0, sizeof *p);
    if (n >= 2) { p->version = frame[0]; p->type = frame[1]; }
    if (n >= 4) p->seq = tt_get_u16le(frame + 2);
    if (n < TT_PROTO_OVERHEAD) return TT_ERR_SHORT;
    p->len = tt_get_u16le(frame + 4);
    p->crc = tt_get_u16le(frame + n - 2);
    p->payload = frame + TT_PROTO_HEADER_BYTES;
    if (tt_proto_crc16(0xFFFFu, frame, n - 2) != p->crc) return TT_ERR_CRC;
    if (p->version != TT_PROTO_VERSION) return TT_ERR_VERSION;
    if ((size_t)p->len != n - TT_PROTO_OVERHEAD) return TT_ERR_LENGTH;
    return 0;
}

size_t tt_proto_seal(uint8_t *buf, uint8_t type, uint16_t seq, uint16_t payload_len)
{
    buf[0] = TT_PROTO_VERSION;
    buf[1] = type;
    tt_put_u16le(buf + 2, seq);
    tt_put_u16le(buf + 4, payload_len);
    size_t n = TT_PROTO_HEADER_BYTES + (size_t)payload_len;
    tt_put_u16le(buf + n, tt_proto_crc16(0xFFFFu, buf, n));
    return n + TT_PROTO_CRC_BYTES;
}

int tt_proto_key_is(const char *key, uint8_t key_len, const char *name)
{
    size_t n = strlen(name);
    return n == key_len && memcmp(key, name, n) == 0;
}
