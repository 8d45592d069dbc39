/* walk.h - the schema-walk helpers the loaders of config/ share (load.c for the main file,
 * webconfig.c for the web config file): YAML paths for messages, a mapping's known keys,
 * typed scalar reads, reading a whole file under a size bound, sorting errors by position.
 * Internal to config/ (not included outside it).
 *
 * Every read reports its problems through a cfg_yaml_report; they return 1 = set, 0 = absent
 * or null, -1 = invalid (reported).
 */
#ifndef ABACUS_CONFIG_WALK_H
#define ABACUS_CONFIG_WALK_H

#include <stddef.h>

#include "yaml_tree.h"

#define CFG_PATH_LEN 256         /* bytes of a path in messages (`mappings[2].labels`) */
#define CFG_MAX_FIELDS 16        /* known keys of one mapping */
#define CFG_MAX_FILE (16u << 20) /* bytes of a file; a ConfigMap holds at most 1 MiB */

/* ---- paths (they only label messages, so building one truncates silently) ------------------ */

/* base.key into out[CFG_PATH_LEN]; returns out. Cannot fail. */
const char *cfg_path_key(char *out, const char *base, const char *key);
/* base[i] into out[CFG_PATH_LEN]; returns out. Cannot fail. */
const char *cfg_path_index(char *out, const char *base, size_t i);

/* A NUL-terminated copy of s[0..n). NULL when out of memory (reported). */
char *cfg_copy_text(cfg_yaml_report *r, const char *s, size_t n);

/* ---- a mapping's known keys: the key and value node of each --------------------------------- */

typedef struct {
    cfg_yaml_report *r;
    const char *path;
    const char *const *names;
    size_t n;
    cfg_node *key[CFG_MAX_FIELDS], *val[CFG_MAX_FIELDS];
} cfg_fields;

/* Fills f from mapping n: the nodes of each of the nn known names; an unknown or duplicate key
 * is reported. 1: n is a mapping; 0: n absent or null; -1: not a mapping (reported). */
int cfg_read_fields(cfg_yaml_report *r, cfg_node *n, const char *path, const char *const *names,
                    size_t nn, cfg_fields *f);
/* The path of field i into out[CFG_PATH_LEN]; returns out. Cannot fail. */
const char *cfg_field_path(char *out, const cfg_fields *f, int i);

/* ---- typed values ------------------------------------------------------------------------- */

/* Any scalar as a string (a NUL inside is an error); *out replaced by a malloc'd copy. */
int cfg_read_string(cfg_yaml_report *r, cfg_node *n, const char *path, char **out);
/* YAML 1.1 booleans (true/false, yes/no, on/off, y/n in their usual cases), unquoted. */
int cfg_read_bool(cfg_yaml_report *r, cfg_node *n, const char *path, int *out);
/* A sequence: its items (borrowed from n) and their count. */
int cfg_read_sequence(cfg_yaml_report *r, cfg_node *n, const char *path, cfg_node ***items,
                      size_t *count);
/* The same reads of field i of f (0 when the key is absent). */
int cfg_field_string(cfg_fields *f, int i, char **out);
int cfg_field_bool(cfg_fields *f, int i, int *out);

/* ---- files and errors ------------------------------------------------------------------------ */

/* Reads path whole (at most CFG_MAX_FILE bytes) into a malloc'd *buf of *len bytes. Returns 0,
 * or -1 after appending one error naming the file (cannot open or read, too large, out of
 * memory). */
int cfg_read_file(const char *path, cfg_errors *errs, char **buf, size_t *len);
/* Checks that file `path` is a readable regular file and, when label is given, that its first
 * CFG_MAX_PEM_SCAN bytes hold a PEM block with that label (suffix 1: a label ending with it,
 * as Go's tls.X509KeyPair looks for "PRIVATE KEY"); kind names the block in the message.
 * Problems are reported at node `at` under path p. Cannot fail. */
#define CFG_MAX_PEM_SCAN (1u << 20)
void cfg_check_file(cfg_yaml_report *r, const cfg_node *at, const char *p, const char *path,
                    const char *label, int suffix, const char *kind);
/* A relative, non-empty *path made relative to the directory of `file` (the file being loaded;
 * kept when file is NULL or in the current directory). Cannot fail (out of memory reported). */
void cfg_resolve_against(cfg_yaml_report *r, const char *file, char **path);
/* Stable sort of e's errors from index `from` by position; those without one go last. Cannot
 * fail. */
void cfg_sort_errors(cfg_errors *e, size_t from);

#endif
