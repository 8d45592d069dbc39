/* same_result.h - the fuzz targets of the push body parsers (fuzz_textparse.c,
 * fuzz_protoparse.c) check that two parses of one input agree: this is that check, once.
 * The includer defines CHECK(cond) (abort when false) first. */
#ifndef ABACUS_FUZZ_SAME_RESULT_H
#define ABACUS_FUZZ_SAME_RESULT_H

#include <string.h>

#include "push/textparse.h"

static int same_double(double a, double b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

/* Two results hold the same families and metrics. */
static void check_same(const exp_text_result *a, const exp_text_result *b) {
    CHECK(a->nfamilies == b->nfamilies);
    for (size_t i = 0; i < a->nfamilies; i++) {
        const exp_text_family *f = &a->families[i], *g = &b->families[i];
        CHECK(strcmp(f->name, g->name) == 0 && f->type == g->type && f->nmetrics == g->nmetrics);
        CHECK((f->help == NULL) == (g->help == NULL) && (!f->help || !strcmp(f->help, g->help)));
        for (size_t j = 0; j < f->nmetrics; j++) {
            const exp_text_metric *m = &f->metrics[j], *n = &g->metrics[j];
            CHECK(m->nlabels == n->nlabels && m->nbuckets == n->nbuckets);
            CHECK(m->nquantiles == n->nquantiles && m->line == n->line);
            CHECK(same_double(m->value, n->value) && same_double(m->sum, n->sum));
            CHECK(same_double(m->count, n->count) && m->has_sum == n->has_sum);
            CHECK(m->has_count == n->has_count && m->has_timestamp == n->has_timestamp);
            CHECK(m->timestamp_ms == n->timestamp_ms);
            for (size_t k = 0; k < m->nlabels; k++)
                CHECK(!strcmp(m->labels[k].name, n->labels[k].name) &&
                      !strcmp(m->labels[k].value, n->labels[k].value));
            for (size_t k = 0; k < m->nbuckets; k++)
                CHECK(same_double(m->bounds[k], n->bounds[k]) &&
                      same_double(m->counts[k], n->counts[k]));
            for (size_t k = 0; k < m->nquantiles; k++)
                CHECK(same_double(m->quantiles[k], n->quantiles[k]) &&
                      same_double(m->qvalues[k], n->qvalues[k]));
        }
    }
}

#endif
