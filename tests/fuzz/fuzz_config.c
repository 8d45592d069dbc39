/* fuzz_config.c - libFuzzer target: the YAML loader, the mapper and cfg_apply
 * (config/config.h), as a start or reload of abacus runs them.
 *
 * Input: a YAML file (loaded from memory with cfg_load_string). A rejected file must come
 * with at least one error, each with a message. An accepted one has its mapper compiled and
 * a few names mapped (fixed ones and names made from each rule's match, for every event
 * kind, twice to go through the cache), and is then applied to an empty registry: every
 * declared metric must then be a family, each label-less one with its one series; applying
 * it again changes nothing; applying "nothing" after it removes every family.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "registry.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_config: check failed at line %d: %s\n", __LINE__, #cond);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char *const fixed_names[] = {
    "foo",
    "foo.bar",
    "foo.bar.baz",
    "api.get.200",
    "jobs.emails.ok",
    "a.b.c.d.e.f.g.h",
    "1abc",
    "test-dash.x_y",
    "x..y",
    ".",
    "",
    "ünïcödé.name",
    "a.*.b",
    "$1",
    "foo.bar.baz.qux.quux",
};

static void map_one(const cfg_mapper *m, cfg_mapper_cache *cache, const char *name, size_t len) {
    static const cfg_metric_kind kinds[] = {CFG_MMT_COUNTER, CFG_MMT_GAUGE, CFG_MMT_OBSERVER};
    for (int rep = 0; rep < 2; rep++) {
        for (size_t k = 0; k < 3; k++) {
            cfg_map_result res;
            memset(&res, 0xa5, sizeof res);
            if (cfg_mapper_map(m, cache, name, len, kinds[k], &res) != 0)
                continue; /* out of memory */
            CHECK(res.drop == 0 || res.drop == 1);
            CHECK(res.mapped == 0 || res.mapped == 1);
            if (res.drop)
                continue;
            CHECK(res.name != NULL);
            CHECK(res.mapped || res.rule == NULL);
            volatile size_t sink = strlen(res.name);
            for (size_t i = 0; i < res.nlabels; i++)
                sink += strlen(res.label_names[i]) + strlen(res.label_values[i]);
            (void)sink;
        }
    }
}

/* A name a glob rule probably matches: each `*` replaced by a word. */
static void map_from_rule(const cfg_mapper *m, cfg_mapper_cache *cache, const cfg_mapping *mp) {
    if (!mp->match)
        return;
    size_t n = strlen(mp->match);
    if (n > 4096)
        return;
    char *buf = malloc(n * 3 + 1);
    CHECK(buf);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (mp->match[i] == '*') {
            memcpy(buf + o, "abc", 3);
            o += 3;
        } else {
            buf[o++] = mp->match[i];
        }
    }
    map_one(m, cache, buf, o);
    map_one(m, cache, mp->match, n); /* regexes: the source itself often matches */
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A heap copy without a terminating NUL: reads past the end are caught. */
    char *yaml = malloc(size ? size : 1);
    CHECK(yaml);
    memcpy(yaml, data, size);
    cfg_errors errs = {0};
    cfg_config *c = cfg_load_string("fuzz.yml", yaml, size, &errs);
    free(yaml);
    if (!c) {
        CHECK(errs.count > 0);
        char *text = NULL;
        size_t tlen = 0;
        FILE *f = open_memstream(&text, &tlen);
        CHECK(f);
        for (size_t i = 0; i < errs.count; i++)
            CHECK(errs.items[i].message != NULL);
        cfg_errors_print(&errs, f);
        fclose(f);
        CHECK(tlen > 0);
        free(text);
        cfg_errors_free(&errs);
        return 0;
    }
    CHECK(errs.count == 0);
    cfg_errors_free(&errs);

    /* The mapper. A loaded config's rules all compile (load validated them). */
    cfg_mapper *m = cfg_mapper_create(c, &errs);
    if (!m) {
        cfg_errors_print(&errs, stderr);
        CHECK(!"cfg_mapper_create failed on a config cfg_load_string accepted");
    }
    cfg_errors_free(&errs);
    cfg_mapper_cache *cache = cfg_mapper_cache_create(8);
    CHECK(cache);
    for (size_t i = 0; i < sizeof fixed_names / sizeof *fixed_names; i++)
        map_one(m, cache, fixed_names[i], strlen(fixed_names[i]));
    for (size_t i = 0; i < c->nmappings && i < 16; i++)
        map_from_rule(m, cache, &c->mappings[i]);
    cfg_mapper_cache_free(cache);
    cfg_mapper_free(m);

    /* Apply to an empty registry, as a start does; again, as a reload of the same file does;
     * then an empty config, as a reload that drops every declaration does. */
    reg_options o = {0};
    reg_registry *r = reg_create(&o);
    CHECK(r);
    size_t labelless = 0;
    for (size_t i = 0; i < c->nmetrics; i++)
        labelless += c->metrics[i].nlabels == 0;
    int rc = cfg_apply(r, NULL, c);
    if (rc != REG_OK) {
        fprintf(stderr, "fuzz_config: cfg_apply of an accepted config: %s\n", reg_strerror(rc));
        abort();
    }
    CHECK(reg_family_total(r) == c->nmetrics);
    CHECK(reg_series_total(r) == labelless);
    CHECK(cfg_apply(r, c, c) == REG_OK);
    CHECK(reg_family_total(r) == c->nmetrics);
    CHECK(reg_series_total(r) == labelless);
    cfg_config *none = cfg_default();
    CHECK(none);
    CHECK(cfg_apply(r, c, none) == REG_OK);
    CHECK(reg_family_total(r) == 0);
    cfg_free(none);
    reg_destroy(r);
    cfg_free(c);
    return 0;
}
