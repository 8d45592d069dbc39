/* internal.h - what the files of config/ share among themselves and nobody else uses (not
 * included outside config/; the YAML tree has its own internal header, yaml_tree.h).
 */
#ifndef ABACUS_CONFIG_INTERNAL_H
#define ABACUS_CONFIG_INTERNAL_H

#include <stddef.h>

/* statsd_exporter's glob (its metricLineRE): dot-separated parts, each `*` or a word
 * character followed by word characters and dashes (`foo--bar`, `foo-` too); the first part
 * must not start with a digit. The loader reports a bad one, the mapper refuses it; both ask
 * here. 1 or 0; cannot fail. */
int cfg_valid_glob(const char *s, size_t len);

#endif
