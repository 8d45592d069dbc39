/* internal.h - what the files of config/ share among themselves and nobody else uses (not
 * included outside config/; the YAML tree has its own internal header, yaml_tree.h).
 */
#ifndef ABACUS_CONFIG_INTERNAL_H
#define ABACUS_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "yaml_tree.h"

/* statsd_exporter's glob (its metricLineRE): dot-separated parts, each `*` or a word
 * character followed by word characters and dashes (`foo--bar`, `foo-` too); the first part
 * must not start with a digit. The loader reports a bad one, the mapper refuses it; both ask
 * here. 1 or 0; cannot fail. */
int cfg_valid_glob(const char *s, size_t len);

/* Typed reads shared by the section loaders (load.c, remote.c): 1 = set, 0 = absent or null,
 * -1 = invalid (reported at n under path). A whole number 0..max (YAML's `_` separators
 * allowed): */
int cfg_read_uint(cfg_yaml_report *r, cfg_node *n, const char *path, uint64_t max, uint64_t *out);
/* A Prometheus duration (cfg_parse_duration), with a message naming what is wrong: */
int cfg_read_duration(cfg_yaml_report *r, cfg_node *n, const char *path, uint64_t *out);

/* A map of label name -> string (const_labels, a mapping's labels, external_labels). */
typedef struct {
    cfg_yaml_report *r;
    const char *path;
    cfg_label *items; /* REG_MAX_LABELS slots, n used */
    cfg_node **keys;  /* key node of each item, for positions */
    size_t n;
    int full;
} cfg_label_map;

/* Reads mapping n (at most REG_MAX_LABELS pairs; duplicates, non-strings reported). 1 when n
 * was a mapping (m filled, items and keys owned by the caller), 0 when absent, -1 reported. */
int cfg_read_label_map(cfg_yaml_report *r, cfg_node *n, const char *path, cfg_label_map *m);
/* Frees n labels and the array. Cannot fail; NULL is ignored. */
void cfg_free_labels(cfg_label *l, size_t n);

/* The `remote_write` section (remote.c): loads n into c->remote_write (every problem
 * reported). Cannot fail. */
void cfg_load_remote_write(cfg_yaml_report *r, cfg_config *c, cfg_node *n);
/* Frees what cfg_load_remote_write filled. Cannot fail. */
void cfg_remote_write_free(cfg_config *c);

#endif
