/* path.c - the grouping key of a push, from its path: "job/<job>" then "/<label>/<value>"
 * pairs, any name suffixed "@base64" to give its value in URL-safe base64 (padding
 * optional), so values may hold '/' or be empty. The Pushgateway's rules: an odd number of
 * components, an invalid or reserved ("__") label name, bad base64 are each a 400; a label
 * given twice keeps the last; job comes from the path's first pair and nothing overrides it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push/internal.h"

#define BASE64_SUFFIX "@base64"

/* Value of one URL-safe base64 character, or -1. */
static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decode s[0..n) (trailing '=' ignored) into out, which has room for n bytes and may be s
 * itself: nothing is written unless all of s is valid. Returns the decoded length, or -1
 * when s is not URL-safe base64. Cannot fail otherwise. */
static long b64_decode(const char *s, size_t n, char *out) {
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (b64_value((unsigned char)s[i]) < 0)
            return -1;
    size_t k = 0;
    unsigned acc = 0, bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (char)((acc >> bits) & 0xff);
        }
    }
    return (long)k;
}

/* One name/value pair of the path, values decoded, into key (a later pair of the same name
 * replaces an earlier one, job excepted). name and value point into the scratch copy, which
 * is writable. 0, or -1 with err. */
static int add_pair(push_key *key, char *name, char *value, int first, char *err, size_t errlen) {
    size_t nl = strlen(name);
    int b64 =
        nl > strlen(BASE64_SUFFIX) && !strcmp(name + nl - strlen(BASE64_SUFFIX), BASE64_SUFFIX);
    if (b64) {
        nl -= strlen(BASE64_SUFFIX);
        name[nl] = '\0';
    }
    if (!reg_valid_label_name(name, nl) || reg_reserved_label_name(REG_UNTYPED, name, nl)) {
        snprintf(err, errlen, "improper label name \"%s\"", name);
        return -1;
    }
    if (b64) {
        long vl = b64_decode(value, strlen(value), value);
        if (vl < 0) {
            snprintf(err, errlen, "invalid base64 encoding for label %s=\"%s\"", name, value);
            return -1;
        }
        if (memchr(value, '\0', (size_t)vl)) {
            /* Values are C strings here: "x\0" would be the group of "x". */
            snprintf(err, errlen, "label %s: a NUL byte in its value", name);
            return -1;
        }
        value[vl] = '\0';
    }
    if (!reg_valid_utf8(value, strlen(value))) {
        snprintf(err, errlen, "label %s: value is not valid UTF-8", name);
        return -1;
    }
    for (size_t i = 0; i < key->n; i++)
        if (!strcmp(key->names[i], name)) {
            if (!first && strcmp(name, "job") != 0)
                key->values[i] = value;
            return 0;
        }
    if (key->n == PUSH_MAX_KEY_LABELS) {
        snprintf(err, errlen, "more than %d labels in the grouping key", PUSH_MAX_KEY_LABELS);
        return -1;
    }
    key->names[key->n] = name;
    key->values[key->n++] = value;
    return 0;
}

/* An empty instance in the path is the same group as none: every pushed series gets
 * instance="" when it has no instance, so the two would render the same series twice (the
 * Pushgateway keeps them apart and then fails every scrape). Cannot fail. */
static void drop_empty_instance(push_key *key) {
    for (size_t i = 0; i < key->n; i++)
        if (!strcmp(key->names[i], "instance") && key->values[i][0] == '\0') {
            key->empty_instance = 1;
            key->names[i] = key->names[key->n - 1];
            key->values[i] = key->values[key->n - 1];
            key->n--;
            return;
        }
}

/* Sort the pairs by name (insertion sort: at most PUSH_MAX_KEY_LABELS). Cannot fail. */
static void sort_pairs(push_key *key) {
    for (size_t i = 1; i < key->n; i++) {
        const char *nm = key->names[i], *v = key->values[i];
        size_t j = i;
        for (; j > 0 && strcmp(key->names[j - 1], nm) > 0; j--) {
            key->names[j] = key->names[j - 1];
            key->values[j] = key->values[j - 1];
        }
        key->names[j] = nm;
        key->values[j] = v;
    }
}

/* Render key->text from the sorted pairs. 0, or -2 out of memory. */
static int render_text(push_key *key) {
    size_t need = 1;
    for (size_t i = 0; i < key->n; i++)
        need += strlen(key->names[i]) + 2 * strlen(key->values[i]) + 4;
    key->text = malloc(need);
    if (key->text == NULL)
        return -2;
    size_t k = 0;
    for (size_t i = 0; i < key->n; i++) {
        if (i)
            key->text[k++] = ',';
        size_t nl = strlen(key->names[i]);
        memcpy(key->text + k, key->names[i], nl);
        k += nl;
        key->text[k++] = '=';
        key->text[k++] = '"';
        k += reg_escape_label_value(key->values[i], strlen(key->values[i]), key->text + k);
        key->text[k++] = '"';
    }
    key->text[k] = '\0';
    key->text_len = k;
    return 0;
}

int push_key_parse(const char *path, push_key *key, char *err, size_t errlen) {
    memset(key, 0, sizeof *key);
    key->buf = strdup(path);
    if (key->buf == NULL)
        return -2;
    /* Components separated by '/': name, value, name, value, ... */
    char *parts[2 * PUSH_MAX_KEY_LABELS + 2];
    size_t n = 0;
    char *p = key->buf;
    for (;;) {
        if (n == sizeof parts / sizeof *parts) {
            snprintf(err, errlen, "more than %d labels in the grouping key", PUSH_MAX_KEY_LABELS);
            goto bad;
        }
        parts[n++] = p;
        char *slash = strchr(p, '/');
        if (slash == NULL)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    /* A lone slash after the job is no label string at all; any other trailing slash is a
     * component of its own (an empty value, or one too many). */
    if (n == 3 && parts[2][0] == '\0')
        n = 2;
    int dots = 0; /* "." and "..": the Pushgateway's router redirects to the cleaned path */
    for (size_t i = 0; i < n; i++)
        dots |= !strcmp(parts[i], ".") || !strcmp(parts[i], "..");
    if (dots || n < 2 ||
        (strcmp(parts[0], "job") != 0 && strcmp(parts[0], "job" BASE64_SUFFIX) != 0) ||
        parts[1][0] == '\0') {
        push_key_free(key);
        return -3; /* no route: the Pushgateway answers 404 */
    }
    if (n % 2 == 1) {
        /* The labels part as the Pushgateway quotes it: from the slash after the job on. */
        const char *labels = path + (parts[2] - key->buf) - 1;
        snprintf(err, errlen, "odd number of components in label string \"%s\"", labels);
        goto bad;
    }
    for (size_t i = 0; i < n; i += 2)
        if (add_pair(key, parts[i], parts[i + 1], i == 0, err, errlen) != 0)
            goto bad;
    if (key->values[0][0] == '\0') {
        snprintf(err, errlen, "job name is required");
        goto bad;
    }
    drop_empty_instance(key);
    sort_pairs(key);
    if (render_text(key) != 0) {
        push_key_free(key);
        return -2;
    }
    return 0;
bad:
    push_key_free(key);
    return -1;
}

void push_key_free(push_key *key) {
    free(key->buf);
    free(key->text);
    memset(key, 0, sizeof *key);
}

size_t exp_push_meta_labels(const char *key, size_t kl, char *out) {
    /* Names are sorted: find where instance goes, or that it is there. */
    size_t at = 0;
    while (at < kl) {
        size_t end = at;
        while (end < kl && key[end] != '=')
            end++;
        int c = strncmp(key + at, "instance", end - at);
        if (c == 0 && end - at == 8) {
            memcpy(out, key, kl);
            out[kl] = '\0';
            return kl;
        }
        if (c > 0 || (c == 0 && end - at > 8))
            break;
        end += 2; /* =" */
        while (end < kl && key[end] != '"')
            end += key[end] == '\\' ? 2 : 1;
        at = end + 2; /* ", */
    }
    if (at > kl)
        at = kl;
    static const char inst[] = "instance=\"\"";
    size_t n = at;
    memcpy(out, key, at);
    if (at > 0 && out[n - 1] != ',')
        out[n++] = ',';
    memcpy(out + n, inst, sizeof inst - 1);
    n += sizeof inst - 1;
    if (at < kl) {
        out[n++] = ',';
        memcpy(out + n, key + at, kl - at);
        n += kl - at;
    }
    out[n] = '\0';
    return n;
}
