/* gzip.c - the scrape's gzip encoder (gzip.h) on ISA-L's streaming igzip.
 *
 * Level 1 with its small level buffer: on scrape text ISA-L's larger suggested buffers
 * compress no better and are no faster (README, Benchmarks), and each concurrent scrape holds
 * one. Level 0 is barely faster and its output half as large again; level 2 gives the same as
 * level 1, level 3 is five times slower. The window stays deflate's 32 KiB, as zlib's was: a
 * smaller one shrinks the benchmark's output (its lines repeat their neighbours) but would
 * lose matches on scrapes whose repeats are further apart, and is no faster.
 */
#include <stdint.h>
#include <stdlib.h>
#include <isa-l/igzip_lib.h>

#include "http/gzip.h"

#define EXP_GZIP_LEVEL 1
#define EXP_GZIP_LEVEL_BUF ISAL_DEF_LVL1_SMALL

struct exp_gzip {
    struct isal_zstream zs;
    uint8_t level_buf[EXP_GZIP_LEVEL_BUF];
};

exp_gzip *exp_gzip_new(void) {
    exp_gzip *z = malloc(sizeof *z);
    if (z == NULL)
        return NULL;
    isal_deflate_init(&z->zs);
    z->zs.level = EXP_GZIP_LEVEL;
    z->zs.level_buf = z->level_buf;
    z->zs.level_buf_size = sizeof z->level_buf;
    z->zs.gzip_flag = IGZIP_GZIP;
    return z;
}

int exp_gzip_run(exp_gzip *z, const char *in, size_t in_len, int last, char *out, size_t out_len,
                 size_t *in_used, size_t *out_made) {
    *in_used = *out_made = 0;
    if (exp_gzip_finished(z))
        return 0;
    /* ISA-L counts in 32 bits; a longer piece goes in over several calls, so the end may
     * only be declared with the last of it. */
    uint32_t in_n = in_len > UINT32_MAX ? UINT32_MAX : (uint32_t)in_len;
    uint32_t out_n = out_len > UINT32_MAX ? UINT32_MAX : (uint32_t)out_len;
    z->zs.next_in = (uint8_t *)(uintptr_t)in; /* ISA-L's field is not const; it only reads */
    z->zs.avail_in = in_n;
    z->zs.end_of_stream = last && in_n == in_len;
    z->zs.next_out = (uint8_t *)out;
    z->zs.avail_out = out_n;
    enum isal_zstate_state before = z->zs.internal_state.state;
    if (isal_deflate(&z->zs) != COMP_OK)
        return -1;
    *in_used = in_n - z->zs.avail_in;
    *out_made = out_n - z->zs.avail_out;
    int could = out_n > 0 && (in_n > 0 || z->zs.end_of_stream);
    int moved = *in_used > 0 || *out_made > 0 || z->zs.internal_state.state != before;
    return could && !moved ? -1 : 0;
}

int exp_gzip_finished(const exp_gzip *z) {
    return z->zs.internal_state.state == ZSTATE_END;
}

void exp_gzip_free(exp_gzip *z) {
    free(z);
}
