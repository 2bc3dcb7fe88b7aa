// zlib for Swift: inflateInit/deflateInit are macros, so they get functions here.
#ifndef UBG_CZLIB_SHIM_H
#define UBG_CZLIB_SHIM_H
#include <zlib.h>

static inline int ubg_inflate_init(z_streamp strm) {
    return inflateInit(strm);
}

static inline int ubg_deflate_init(z_streamp strm, int level) {
    return deflateInit(strm, level);
}

static inline int ubg_deflate_init2(z_streamp strm, int level, int window_bits) {
    return deflateInit2(strm, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
}
#endif
