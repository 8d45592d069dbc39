/* fuzz_textparse.c - libFuzzer target: the pushed-body text format parser
 * (exporter/push/textparse.h).
 *
 * Input: the body, as is (not NUL-terminated, NULs allowed). Each input is parsed twice, with
 * and without small limits, and checked: the return is 0, -1 or -2; an error leaves the result
 * zeroed and a message that starts "text format parsing error in line N: " (N no larger than
 * the number of lines) or is "out of memory"; a success has only families with metrics, valid
 * metric names, label names and UTF-8 label values without le/quantile where they are bounds,
 * matching bucket/quantile arrays, metric lines within the input and non-decreasing in each
 * family; a second parse gives the same answer (deterministic); a parse with limits either
 * gives the same result or names the limit it hit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gostrconv.h"
#include "push/textparse.h"
#include "registry.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_textparse: check failed at line %d: %s\n", __LINE__, #cond);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#include "same_result.h" /* uses CHECK */

static const char PREFIX[] = "text format parsing error in line ";

/* The message of a failed parse names a line of the input. */
static void check_error(int rc, const char *err, const exp_text_result *r, unsigned lines) {
    CHECK(r->families == NULL && r->nfamilies == 0 && r->arena == NULL);
    if (rc == -2) {
        CHECK(strcmp(err, "out of memory") == 0);
        return;
    }
    CHECK(strncmp(err, PREFIX, sizeof PREFIX - 1) == 0);
    char *end;
    unsigned long line = strtoul(err + sizeof PREFIX - 1, &end, 10);
    CHECK(line >= 1 && line <= lines);
    CHECK(end[0] == ':' && end[1] == ' ' && end[2] != 0);
}

static void check_metric(const exp_text_family *f, const exp_text_metric *m, unsigned lines) {
    CHECK(m->line >= 1 && m->line <= lines);
    CHECK(m->nlabels == 0 || m->labels != NULL);
    for (size_t k = 0; k < m->nlabels; k++) {
        const char *n = m->labels[k].name, *v = m->labels[k].value;
        CHECK(reg_valid_label_name(n, strlen(n)));
        CHECK(strcmp(n, "__name__") != 0);
        CHECK(exp_go_utf8_valid((const unsigned char *)v, strlen(v)));
        CHECK(!(f->type == REG_HISTOGRAM && strcmp(n, "le") == 0));
        CHECK(!(f->type == REG_SUMMARY && strcmp(n, "quantile") == 0));
        for (size_t j = 0; j < k; j++)
            CHECK(strcmp(m->labels[j].name, n) != 0);
    }
    CHECK((m->nbuckets == 0) == (m->bounds == NULL) && (m->nbuckets == 0) == (m->counts == NULL));
    CHECK((m->nquantiles == 0) == (m->quantiles == NULL) &&
          (m->nquantiles == 0) == (m->qvalues == NULL));
    if (f->type != REG_HISTOGRAM)
        CHECK(m->nbuckets == 0);
    if (f->type != REG_SUMMARY)
        CHECK(m->nquantiles == 0);
    if (f->type != REG_HISTOGRAM && f->type != REG_SUMMARY)
        CHECK(!m->has_sum && !m->has_count);
    CHECK(m->has_timestamp == 0 || m->has_timestamp == 1);
}

/* Returns the number of metrics. */
static size_t check_result(const exp_text_result *r, unsigned lines) {
    size_t total = 0;
    CHECK((r->nfamilies == 0) == (r->families == NULL));
    for (size_t i = 0; i < r->nfamilies; i++) {
        const exp_text_family *f = &r->families[i];
        CHECK(reg_valid_metric_name(f->name, strlen(f->name)));
        CHECK(f->help == NULL || f->help[0] != 0);
        CHECK(f->type <= REG_UNTYPED);
        CHECK(f->nmetrics >= 1 && f->metrics != NULL);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(r->families[j].name, f->name) != 0);
        for (size_t j = 0; j < f->nmetrics; j++) {
            check_metric(f, &f->metrics[j], lines);
            if (j)
                CHECK(f->metrics[j].line >= f->metrics[j - 1].line);
        }
        total += f->nmetrics;
    }
    return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A heap copy of exactly size bytes, so reading past the end is caught. */
    char *buf = malloc(size ? size : 1);
    CHECK(buf);
    if (size)
        memcpy(buf, data, size);
    unsigned lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += buf[i] == '\n';

    exp_text_result a, b, c;
    char ea[512], eb[512], ec[512];
    int ra = exp_text_parse(buf, size, NULL, &a, ea, sizeof ea);
    int rb = exp_text_parse(buf, size, NULL, &b, eb, sizeof eb);
    CHECK(ra == 0 || ra == -1 || ra == -2);
    CHECK(ra == rb);
    size_t metrics = 0;
    if (ra) {
        check_error(ra, ea, &a, lines);
        CHECK(strcmp(ea, eb) == 0);
    } else {
        CHECK(ea[0] == 0);
        metrics = check_result(&a, lines);
        check_same(&a, &b);
    }

    /* Small limits: the same result when within them, else an error naming one. */
    exp_text_limits lim = {.max_labels = 3, .max_families = 3, .max_metrics = 5};
    int rc = exp_text_parse(buf, size, &lim, &c, ec, sizeof ec);
    if (rc == 0) {
        CHECK(ra == 0);
        CHECK(c.nfamilies <= 3 && check_result(&c, lines) <= 5);
        check_same(&a, &c);
    } else if (rc == -1) {
        check_error(rc, ec, &c, lines);
        CHECK(ra != 0 || strstr(ec, "(max_labels 3)") || strstr(ec, "(max_families 3)") ||
              strstr(ec, "(max_metrics 5)"));
        if (ra == 0)
            CHECK(a.nfamilies > 3 || metrics > 5 || strstr(ec, "max_labels"));
    }
    exp_text_free(&a);
    exp_text_free(&b);
    exp_text_free(&c);
    free(buf);
    return 0;
}
