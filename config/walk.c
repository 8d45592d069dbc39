/* walk.c - the schema-walk helpers shared by the loaders of config/ (see walk.h): paths,
 * known keys, typed scalar reads, whole-file reads and error order.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "walk.h"

/* ---- paths -------------------------------------------------------------------------------- */

/* out[o..] += s, truncated to CFG_PATH_LEN; returns the new length. Cannot fail. */
static size_t path_append(char *out, size_t o, const char *s) {
    size_t n = strlen(s);
    if (n > CFG_PATH_LEN - 1 - o)
        n = CFG_PATH_LEN - 1 - o;
    memcpy(out + o, s, n);
    out[o + n] = 0;
    return o + n;
}

/* Cannot fail. */
const char *cfg_path_key(char *out, const char *base, const char *key) {
    size_t o = path_append(out, 0, base);
    if (o)
        o = path_append(out, o, ".");
    path_append(out, o, key);
    return out;
}

/* Cannot fail. */
const char *cfg_path_index(char *out, const char *base, size_t i) {
    char num[32];
    snprintf(num, sizeof num, "[%zu]", i);
    path_append(out, path_append(out, 0, base), num);
    return out;
}

/* NULL when out of memory (reported). */
char *cfg_copy_text(cfg_yaml_report *r, const char *s, size_t n) {
    char *t = malloc(n + 1);
    if (!t) {
        cfg_yaml_oom(r);
        return NULL;
    }
    memcpy(t, s, n);
    t[n] = 0;
    return t;
}

/* ---- known keys --------------------------------------------------------------------------- */

/* The pair callback of cfg_read_fields: a known key's nodes go to their slot; an unknown or
 * duplicate key is reported (a duplicate from a merge is YAML's "explicit key wins"). Cannot
 * fail. */
static void fields_pair(void *arg, cfg_node *k, cfg_node *v, int merged) {
    cfg_fields *f = arg;
    cfg_quoted b;
    for (size_t i = 0; i < f->n; i++) {
        if (strlen(f->names[i]) == k->len && memcmp(f->names[i], k->s, k->len) == 0) {
            if (f->val[i]) {
                if (!merged)
                    cfg_yaml_error(f->r, k, f->path, "duplicate key %s",
                                   cfg_quote(&b, k->s, k->len));
                return;
            }
            f->key[i] = k;
            f->val[i] = v;
            return;
        }
    }
    cfg_yaml_error(f->r, k, f->path, "unknown key %s", cfg_quote(&b, k->s, k->len));
}

/* 1, 0 or -1 (reported), see walk.h. */
int cfg_read_fields(cfg_yaml_report *r, cfg_node *n, const char *path, const char *const *names,
                    size_t nn, cfg_fields *f) {
    memset(f, 0, sizeof *f);
    f->r = r;
    f->path = path;
    f->names = names;
    f->n = nn < CFG_MAX_FIELDS ? nn : CFG_MAX_FIELDS;
    if (cfg_yaml_is_null(n))
        return 0;
    if (n->kind != CFG_NODE_MAP) {
        cfg_quoted b;
        cfg_yaml_error(r, n, path, "expected a mapping, got %s", cfg_yaml_describe(n, &b));
        return -1;
    }
    cfg_yaml_walk_map(r, n, path, fields_pair, f);
    return 1;
}

/* Cannot fail. */
const char *cfg_field_path(char *out, const cfg_fields *f, int i) {
    return cfg_path_key(out, f->path, f->names[i]);
}

/* ---- typed values ------------------------------------------------------------------------- */

/* 1, 0 or -1 (reported). */
int cfg_read_string(cfg_yaml_report *r, cfg_node *n, const char *path, char **out) {
    cfg_quoted b;
    if (cfg_yaml_is_null(n))
        return 0;
    if (n->kind != CFG_NODE_SCALAR) {
        cfg_yaml_error(r, n, path, "expected a string, got %s", cfg_yaml_describe(n, &b));
        return -1;
    }
    if (memchr(n->s, 0, n->len)) {
        cfg_yaml_error(r, n, path, "string contains a NUL character");
        return -1;
    }
    char *s = cfg_copy_text(r, n->s, n->len);
    if (!s)
        return -1;
    free(*out);
    *out = s;
    return 1;
}

/* 1, 0 or -1 (reported). */
int cfg_read_bool(cfg_yaml_report *r, cfg_node *n, const char *path, int *out) {
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
                                      "on",   "On",   "ON",   "y",   "Y"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO",
                                     "off",   "Off",   "OFF",   "n",  "N"};
    cfg_quoted b;
    if (cfg_yaml_is_null(n))
        return 0;
    if (n->kind == CFG_NODE_SCALAR && !n->quoted) {
        for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
            if (!strcmp(n->s, yes[i])) {
                *out = 1;
                return 1;
            }
            if (!strcmp(n->s, no[i])) {
                *out = 0;
                return 1;
            }
        }
    }
    cfg_yaml_error(r, n, path, "expected true or false, got %s", cfg_yaml_describe(n, &b));
    return -1;
}

/* 1, 0 or -1 (reported). */
int cfg_read_sequence(cfg_yaml_report *r, cfg_node *n, const char *path, cfg_node ***items,
                      size_t *count) {
    cfg_quoted b;
    *items = NULL;
    *count = 0;
    if (cfg_yaml_is_null(n))
        return 0;
    if (n->kind != CFG_NODE_SEQ) {
        cfg_yaml_error(r, n, path, "expected a sequence, got %s", cfg_yaml_describe(n, &b));
        return -1;
    }
    *items = n->kids;
    *count = n->n;
    return 1;
}

/* 1, 0 (absent) or -1 (reported). */
int cfg_field_string(cfg_fields *f, int i, char **out) {
    char p[CFG_PATH_LEN];
    return f->val[i] ? cfg_read_string(f->r, f->val[i], cfg_field_path(p, f, i), out) : 0;
}

/* 1, 0 (absent) or -1 (reported). */
int cfg_field_bool(cfg_fields *f, int i, int *out) {
    char p[CFG_PATH_LEN];
    return f->val[i] ? cfg_read_bool(f->r, f->val[i], cfg_field_path(p, f, i), out) : 0;
}

/* ---- files and errors --------------------------------------------------------------------- */

/* 0, or -1 with one error appended (see walk.h). */
int cfg_read_file(const char *path, cfg_errors *errs, char **out, size_t *outlen) {
    *out = NULL;
    *outlen = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        cfg_errors_add_at(errs, path, 0, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    int err = 0;
    while (buf) {
        if (len == cap) {
            if (cap > CFG_MAX_FILE)
                break;
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        // cppcheck-suppress nullPointerArithmeticRedundantCheck ; buf is set inside the loop
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f))
                err = errno ? errno : EIO;
            break;
        }
    }
    fclose(f);
    if (!buf)
        cfg_errors_add_at(errs, path, 0, 0, "cannot read: out of memory");
    else if (err)
        cfg_errors_add_at(errs, path, 0, 0, "cannot read: %s", strerror(err));
    else if (len > CFG_MAX_FILE)
        cfg_errors_add_at(errs, path, 0, 0, "file too large (max %u bytes)", CFG_MAX_FILE);
    else {
        *out = buf;
        *outlen = len;
        return 0;
    }
    free(buf);
    return -1;
}

/* 1 when buf[0..len) holds a line "-----BEGIN <label>-----" whose label is `label`, or ends
 * with it when suffix is 1 (Go's pem.Decode, as tls.X509KeyPair looks for blocks). Cannot
 * fail. */
static int has_pem_block(const char *buf, size_t len, const char *label, int suffix) {
    static const char begin[] = "-----BEGIN ";
    size_t bl = sizeof begin - 1, ll = strlen(label);
    for (size_t i = 0; i + bl <= len; i++) {
        if ((i && buf[i - 1] != '\n') || memcmp(buf + i, begin, bl))
            continue;
        const char *s = buf + i + bl;
        const char *e = memchr(s, '\n', len - (size_t)(s - buf));
        size_t rest = e ? (size_t)(e - s) : len - (size_t)(s - buf);
        while (rest && (s[rest - 1] == '\r' || s[rest - 1] == ' '))
            rest--;
        if (rest < 5 || memcmp(s + rest - 5, "-----", 5))
            continue;
        rest -= 5;
        if (rest == ll ? !memcmp(s, label, ll)
                       : suffix && rest > ll && !memcmp(s + rest - ll, label, ll) &&
                             s[rest - ll - 1] == ' ')
            return 1;
    }
    return 0;
}

/* Cannot fail (problems reported at node at). */
void cfg_check_file(cfg_yaml_report *rep, const cfg_node *at, const char *p, const char *path,
                    const char *label, int suffix, const char *kind) {
    cfg_quoted b;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        cfg_yaml_error(rep, at, p, "cannot read %s: %s", cfg_quote_str(&b, path), strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        cfg_yaml_error(rep, at, p, "cannot read %s: not a regular file", cfg_quote_str(&b, path));
        close(fd);
        return;
    }
    if (label) {
        size_t cap = st.st_size > 0 && (size_t)st.st_size < CFG_MAX_PEM_SCAN ? (size_t)st.st_size
                                                                             : CFG_MAX_PEM_SCAN;
        char *buf = malloc(cap ? cap : 1);
        ssize_t got = 0, r = 0;
        while (buf && (size_t)got < cap && (r = read(fd, buf + got, cap - (size_t)got)) > 0)
            got += r;
        if (!buf)
            cfg_yaml_oom(rep);
        else if (r < 0)
            cfg_yaml_error(rep, at, p, "cannot read %s: %s", cfg_quote_str(&b, path),
                           strerror(errno));
        else if (!has_pem_block(buf, (size_t)got, label, suffix))
            cfg_yaml_error(rep, at, p, "%s holds no PEM %s", cfg_quote_str(&b, path), kind);
        free(buf);
    }
    close(fd);
}

/* Cannot fail (out of memory is reported). */
void cfg_resolve_against(cfg_yaml_report *r, const char *file, char **path) {
    const char *slash = file ? strrchr(file, '/') : NULL;
    if (!**path || **path == '/' || !slash)
        return;
    size_t dl = (size_t)(slash - file), n = strlen(*path);
    char *out = malloc(dl + 1 + n + 1);
    if (!out) {
        cfg_yaml_oom(r);
        return;
    }
    memcpy(out, file, dl);
    out[dl] = '/';
    memcpy(out + dl + 1, *path, n + 1);
    free(*path);
    *path = out;
}

/* Cannot fail. */
void cfg_sort_errors(cfg_errors *e, size_t from) {
    for (size_t i = from + 1; i < e->count; i++) {
        cfg_error x = e->items[i];
        uint64_t kx = x.line ? ((uint64_t)x.line << 32 | x.column) : UINT64_MAX;
        size_t j = i;
        while (j > from) {
            const cfg_error *y = &e->items[j - 1];
            uint64_t ky = y->line ? ((uint64_t)y->line << 32 | y->column) : UINT64_MAX;
            if (ky <= kx)
                break;
            e->items[j] = *y;
            j--;
        }
        e->items[j] = x;
    }
}
