/* Users, password hashes, vhosts and permissions: see auth.h for the rules and their
 * sources. */
#include "src/security/auth.h"

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "src/base/log.h"
#include "src/base/regex.h"
#include "src/base/util.h"

enum pattern_kind {
    PATTERN_ALL,        /* ".*": an unanchored search that cannot fail */
    PATTERN_EMPTY_ONLY, /* "^$" and "": RabbitMQ's way of granting nothing */
    PATTERN_REGEX,
};

static void set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

static struct wire_bytes name_bytes(const char *s)
{
    return wire_cstr(s);
}

static char **strv_dup(const char *const *v, size_t len)
{
    char **out;

    if (len == 0)
        return NULL;
    out = xcalloc(len, sizeof *out);
    for (size_t i = 0; i < len; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

static void strv_free(char **v, size_t len)
{
    for (size_t i = 0; i < len; i++)
        free(v[i]);
    free(v);
}

/* ---- Passwords ------------------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t digest_bytes;
} algorithms[] = {
    [AUTH_HASH_SHA256] = {"rabbit_password_hashing_sha256", 32},
    [AUTH_HASH_SHA512] = {"rabbit_password_hashing_sha512", 64},
    [AUTH_HASH_MD5] = {"rabbit_password_hashing_md5", 16},
};

const char *auth_hash_algorithm_name(enum auth_hash_algorithm algorithm)
{
    return (size_t)algorithm < ARRAY_LEN(algorithms) ? algorithms[algorithm].name : NULL;
}

int auth_hash_algorithm_parse(const char *name, enum auth_hash_algorithm *out)
{
    for (size_t i = 0; i < ARRAY_LEN(algorithms); i++) {
        if (strcmp(name, algorithms[i].name) == 0) {
            *out = (enum auth_hash_algorithm)i;
            return 0;
        }
    }
    return -1;
}

size_t auth_hash_length(enum auth_hash_algorithm algorithm)
{
    assert((size_t)algorithm < ARRAY_LEN(algorithms));
    return AUTH_SALT_BYTES + algorithms[algorithm].digest_bytes;
}

static const EVP_MD *algorithm_md(enum auth_hash_algorithm algorithm)
{
    switch (algorithm) {
    case AUTH_HASH_SHA512:
        return EVP_sha512();
    case AUTH_HASH_MD5:
        return EVP_md5();
    case AUTH_HASH_SHA256:
    default:
        return EVP_sha256();
    }
}

size_t auth_hash_password(enum auth_hash_algorithm algorithm, const uint8_t salt[AUTH_SALT_BYTES],
                          struct wire_bytes password, uint8_t *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned digest_len = 0;

    /* Only memory exhaustion makes these fail, which is fatal everywhere in Warren. */
    if (ctx == NULL || EVP_DigestInit_ex(ctx, algorithm_md(algorithm), NULL) != 1 ||
        EVP_DigestUpdate(ctx, salt, AUTH_SALT_BYTES) != 1 ||
        (password.len > 0 && EVP_DigestUpdate(ctx, password.ptr, password.len) != 1) ||
        EVP_DigestFinal_ex(ctx, out + AUTH_SALT_BYTES, &digest_len) != 1) {
        log_error(NULL, "password hashing failed in OpenSSL");
        abort();
    }
    EVP_MD_CTX_free(ctx);
    memcpy(out, salt, AUTH_SALT_BYTES);
    return AUTH_SALT_BYTES + digest_len;
}

void auth_base64_encode(const uint8_t *in, size_t len, char *out)
{
    /* EVP_EncodeBlock pads and adds no line breaks, as Erlang's base64:encode. */
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

static bool is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

int auth_base64_decode(const char *text, uint8_t *out, size_t out_size)
{
    size_t len = strlen(text), pad = 0, decoded;
    uint8_t *tmp;
    int n;

    /* EVP_DecodeBlock skips surrounding blanks and returns the padding as zero bytes, so the
     * text is checked here first and the padding subtracted after. */
    if (len % 4 != 0)
        return -1;
    if (len == 0)
        return 0;
    if (text[len - 1] == '=')
        pad = text[len - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < len - pad; i++) {
        if (!is_base64_char(text[i]))
            return -1;
    }
    decoded = len / 4 * 3 - pad;
    if (decoded > out_size)
        return -1;
    tmp = xmalloc(len / 4 * 3);
    n = EVP_DecodeBlock(tmp, (const unsigned char *)text, (int)len);
    if (n < 0 || (size_t)n != len / 4 * 3) {
        free(tmp);
        return -1;
    }
    memcpy(out, tmp, decoded);
    free(tmp);
    return (int)decoded;
}

bool auth_check_password(const struct auth_db *db, struct wire_bytes user,
                         struct wire_bytes password)
{
    static const uint8_t dummy[AUTH_HASH_MAX_BYTES];
    const struct auth_user *u = auth_user_find(db, user);
    enum auth_hash_algorithm algorithm = u != NULL ? u->algorithm : AUTH_HASH_SHA256;
    const uint8_t *stored = dummy;
    uint8_t computed[AUTH_HASH_MAX_BYTES];
    size_t len;
    bool usable = u != NULL;

    if (u != NULL && u->hash_len >= AUTH_SALT_BYTES)
        stored = u->hash;
    /* The same hashing and comparison happen for a missing user, a user without a password
     * and a wrong password, so that the time taken does not tell them apart. */
    len = auth_hash_password(algorithm, stored, password, computed);
    if (u == NULL || u->hash_len != len) {
        stored = dummy;
        usable = false;
    }
    if (CRYPTO_memcmp(computed + AUTH_SALT_BYTES, stored + AUTH_SALT_BYTES,
                      len - AUTH_SALT_BYTES) != 0)
        return false;
    return usable && password.len > 0;
}

/* ---- Patterns -------------------------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_putn(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static void sb_putc(struct sbuf *b, char c)
{
    sb_putn(b, &c, 1);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* PCRE takes '{' as a quantifier only in the forms {n}, {n,} and {n,m}; anywhere else it is
 * a literal (which is how "^{username}-.*" compiles in RabbitMQ). Returns the length of the
 * quantifier at s, or 0. */
static size_t interval_len(const char *s)
{
    size_t i = 1;

    if (!is_digit(s[i]))
        return 0;
    while (is_digit(s[i]))
        i++;
    if (s[i] == ',') {
        i++;
        while (is_digit(s[i]))
            i++;
    }
    return s[i] == '}' ? i + 1 : 0;
}

/* Inside [...]: one member that can end a range, decoded to the byte it stands for. Returns
 * 1 for a byte, 2 for a class written into b (\d \w \s, [:name:]), -1 with err. */
static int bracket_member(const char **sp, struct sbuf *cls, char *byte, char *err, size_t err_size)
{
    const char *s = *sp;

    if (s[0] == '[' && s[1] == ':') {
        const char *end = strstr(s + 2, ":]");
        if (end == NULL) {
            set_err(err, err_size, "unterminated [: in character class");
            return -1;
        }
        sb_putn(cls, s, (size_t)(end + 2 - s));
        *sp = end + 2;
        return 2;
    }
    if (s[0] != '\\') {
        *byte = s[0];
        *sp = s + 1;
        return 1;
    }
    *sp = s + 2;
    switch (s[1]) {
    case 'd':
        sb_puts(cls, "0-9");
        return 2;
    case 'w':
        sb_puts(cls, "[:alnum:]_");
        return 2;
    case 's':
        sb_puts(cls, "[:space:]");
        return 2;
    case 'n':
        *byte = '\n';
        return 1;
    case 't':
        *byte = '\t';
        return 1;
    case 'r':
        *byte = '\r';
        return 1;
    case 'f':
        *byte = '\f';
        return 1;
    case '\0':
        set_err(err, err_size, "missing terminating ] for character class");
        return -1;
    default:
        if (isalnum((unsigned char)s[1])) {
            set_err(err, err_size, "unsupported escape \\%c in character class", s[1]);
            return -1;
        }
        *byte = s[1]; /* \. \] \- \\ and the like stand for the character itself */
        return 1;
    }
}

/* A PCRE character class at *sp ('[' already consumed) rewritten as a POSIX bracket
 * expression. POSIX has no escapes inside brackets, so ']' goes first, '-' last and '^'
 * anywhere but first. */
static int translate_bracket(const char **sp, struct sbuf *out, char *err, size_t err_size)
{
    const char *s = *sp;
    struct sbuf items = {0};
    bool negate = false, rbracket = false, hyphen = false, caret = false, lbracket = false;
    bool first = true;
    int rc = -1;

    if (*s == '^') {
        negate = true;
        s++;
    }
    for (;;) {
        char lo = 0, hi = 0;
        int kind;

        if (*s == '\0') {
            set_err(err, err_size, "missing terminating ] for character class");
            goto out;
        }
        if (*s == ']' && !first) {
            s++;
            break;
        }
        first = false;
        if (*s == ']') { /* a ']' right after '[' or '[^' is a member */
            rbracket = true;
            s++;
            continue;
        }
        if ((kind = bracket_member(&s, &items, &lo, err, err_size)) < 0)
            goto out;
        if (kind == 2)
            continue;
        if (s[0] == '-' && s[1] != ']' && s[1] != '\0') {
            s++;
            if ((kind = bracket_member(&s, &items, &hi, err, err_size)) < 0)
                goto out;
            if (kind == 2 || strchr("]^-[\\", lo) != NULL || strchr("]^-[\\", hi) != NULL) {
                set_err(err, err_size, "unsupported range in character class");
                goto out;
            }
            if ((unsigned char)lo > (unsigned char)hi) {
                set_err(err, err_size, "range out of order in character class");
                goto out;
            }
            sb_putc(&items, lo);
            sb_putc(&items, '-');
            sb_putc(&items, hi);
            continue;
        }
        switch (lo) {
        case ']':
            rbracket = true;
            break;
        case '-':
            hyphen = true;
            break;
        case '^':
            caret = true;
            break;
        case '[':
            lbracket = true; /* last, so that it cannot start "[:" with a following ':' */
            break;
        default:
            sb_putc(&items, lo);
        }
    }
    if (caret && !negate && !rbracket && items.len == 0 && !lbracket && !hyphen) {
        sb_puts(out, "\\^"); /* [\^] alone: a bracket would read as a negation */
        rc = 0;
        goto out;
    }
    sb_putc(out, '[');
    if (negate)
        sb_putc(out, '^');
    if (caret && !rbracket && items.len == 0 && !lbracket) {
        /* '^' would come first: put the '-' before it ("[-^]"), or after a negation. */
        if (hyphen)
            sb_putc(out, '-');
        sb_putc(out, '^');
        caret = false;
        hyphen = false;
    }
    if (rbracket)
        sb_putc(out, ']');
    if (items.len > 0)
        sb_puts(out, items.p);
    if (lbracket)
        sb_putc(out, '[');
    if (caret)
        sb_putc(out, '^');
    if (hyphen)
        sb_putc(out, '-');
    sb_putc(out, ']');
    rc = 0;
out:
    free(items.p);
    *sp = s;
    return rc;
}

/* After a quantifier: PCRE's lazy form ("*?") finds a match exactly when the greedy one
 * does, so the '?' is dropped; the possessive form ("*+") can fail where ERE matches. */
static int quantifier_suffix(const char **sp, char *err, size_t err_size)
{
    if (**sp == '?') {
        (*sp)++;
    } else if (**sp == '+') {
        set_err(err, err_size, "possessive quantifiers are not supported");
        return -1;
    }
    return 0;
}

/* Rewrites a PCRE pattern (as RabbitMQ compiles permissions) into a POSIX extended one with
 * the same matches, or refuses what POSIX cannot express. */
static int pcre_to_ere(const char *src, char **out, char *err, size_t err_size)
{
    struct sbuf b = {0};
    const char *s = src;
    size_t n;

    sb_puts(&b, "");
    while (*s != '\0') {
        char c = *s++;

        switch (c) {
        case '\\':
            c = *s++;
            switch (c) {
            case '\0':
                set_err(err, err_size, "\\ at end of pattern");
                goto fail;
            case 'd':
                sb_puts(&b, "[0-9]");
                break;
            case 'D':
                sb_puts(&b, "[^0-9]");
                break;
            case 'w':
                sb_puts(&b, "[[:alnum:]_]");
                break;
            case 'W':
                sb_puts(&b, "[^[:alnum:]_]");
                break;
            case 's':
                sb_puts(&b, "[[:space:]]");
                break;
            case 'S':
                sb_puts(&b, "[^[:space:]]");
                break;
            case 'n':
                sb_putc(&b, '\n');
                break;
            case 't':
                sb_putc(&b, '\t');
                break;
            case 'r':
                sb_putc(&b, '\r');
                break;
            case 'f':
                sb_putc(&b, '\f');
                break;
            case 'b':
            case 'B':
                sb_putc(&b, '\\'); /* word boundaries: a GNU extension of ERE */
                sb_putc(&b, c);
                break;
            default:
                if (isalnum((unsigned char)c)) {
                    set_err(err, err_size, "unsupported escape \\%c", c);
                    goto fail;
                }
                if (strchr(".[]()*+?{}|^$\\", c) != NULL)
                    sb_putc(&b, '\\');
                sb_putc(&b, c);
            }
            break;
        case '[':
            if (translate_bracket(&s, &b, err, err_size) < 0)
                goto fail;
            break;
        case '(':
            if (*s == '?') {
                if (s[1] != ':') {
                    set_err(err, err_size, "unsupported group syntax (?%c", s[1]);
                    goto fail;
                }
                s += 2; /* (?:...) groups without capturing; ERE never captures here */
            }
            sb_putc(&b, '(');
            break;
        case '{':
            if ((n = interval_len(s - 1)) == 0) {
                sb_puts(&b, "\\{");
                break;
            }
            sb_putn(&b, s - 1, n);
            s += n - 1;
            if (quantifier_suffix(&s, err, err_size) < 0)
                goto fail;
            break;
        case '}':
            sb_puts(&b, "\\}");
            break;
        case '*':
        case '+':
        case '?':
            sb_putc(&b, c);
            if (quantifier_suffix(&s, err, err_size) < 0)
                goto fail;
            break;
        default:
            sb_putc(&b, c);
        }
    }
    *out = b.p;
    return 0;
fail:
    free(b.p);
    return -1;
}

/* A pattern may be long (up to REGEX_MAX_BYTES): the reason must still fit in the message. */
#define PATTERN_QUOTE_MAX 200

static void set_invalid(char *err, size_t err_size, const char *source, const char *why)
{
    set_err(err, err_size, "regular expression '%.*s%s' is invalid: %s", PATTERN_QUOTE_MAX, source,
            strlen(source) > PATTERN_QUOTE_MAX ? "..." : "", why);
}

static int pattern_compile_from(struct auth_pattern *p, const char *source, const char *expanded,
                                char *err, size_t err_size)
{
    char *ere = NULL, why[AUTH_ERR_MAX];
    int rc;

    memset(p, 0, sizeof *p);
    if (strcmp(expanded, ".*") == 0) {
        p->kind = PATTERN_ALL;
    } else if (expanded[0] == '\0' || strcmp(expanded, "^$") == 0) {
        p->kind = PATTERN_EMPTY_ONLY; /* RabbitMQ replaces "" with "^$" before matching */
    } else {
        if (pcre_to_ere(expanded, &ere, why, sizeof why) < 0) {
            set_invalid(err, err_size, source, why);
            return -1;
        }
        rc = regex_compile_bounded(&p->re, ere, why, sizeof why);
        free(ere);
        if (rc != 0) {
            set_invalid(err, err_size, source, why);
            return -1;
        }
        p->kind = PATTERN_REGEX;
    }
    p->source = xstrdup(source);
    return 0;
}

int auth_pattern_compile(struct auth_pattern *p, const char *source, char *err, size_t err_size)
{
    return pattern_compile_from(p, source, source, err, err_size);
}

void auth_pattern_free(struct auth_pattern *p)
{
    if (p == NULL || p->source == NULL)
        return;
    if (p->kind == PATTERN_REGEX)
        regfree(&p->re);
    free(p->source);
    p->source = NULL;
}

bool auth_pattern_matches(const struct auth_pattern *p, struct wire_bytes name)
{
    regmatch_t range[1];

    switch (p->kind) {
    case PATTERN_ALL:
        return true;
    case PATTERN_EMPTY_ONLY:
        return name.len == 0;
    default:
        /* REG_STARTEND bounds the search by length: names from the wire are not
         * NUL-terminated and may contain NUL. */
        range[0].rm_so = 0;
        range[0].rm_eo = (regoff_t)name.len;
        return regexec(&p->re, name.len > 0 ? (const char *)name.ptr : "", 1, range,
                       REG_STARTEND) == 0;
    }
}

/* ---- The database ---------------------------------------------------------------------- */

static void permission_free(struct auth_permission *perm)
{
    auth_pattern_free(&perm->configure);
    auth_pattern_free(&perm->write);
    auth_pattern_free(&perm->read);
    free(perm->vhost);
    free(perm);
}

static void topic_permission_free(struct auth_topic_permission *tp)
{
    auth_pattern_free(&tp->write);
    auth_pattern_free(&tp->read);
    free(tp->exchange);
    free(tp);
}

static void topic_vhost_free(struct auth_topic_vhost *tv)
{
    void *v;

    for (size_t i = 0; hmap_next(&tv->exchanges, &i, &v);)
        topic_permission_free(v);
    hmap_free(&tv->exchanges);
    free(tv->vhost);
    free(tv);
}

static void user_free(struct auth_user *u)
{
    void *v;

    for (size_t i = 0; hmap_next(&u->permissions, &i, &v);)
        permission_free(v);
    hmap_free(&u->permissions);
    for (size_t i = 0; hmap_next(&u->topic_permissions, &i, &v);)
        topic_vhost_free(v);
    hmap_free(&u->topic_permissions);
    strv_free(u->tags, u->tags_len);
    OPENSSL_cleanse(u->hash, sizeof u->hash);
    free(u->name);
    free(u);
}

static void vhost_free_entry(struct auth_vhost *vh)
{
    strv_free(vh->tags, vh->tags_len);
    free(vh->description);
    free(vh->default_queue_type);
    free(vh->name);
    free(vh);
}

static void global_parameter_free(struct auth_global_parameter *g)
{
    free(g->name);
    free(g->value_json);
    free(g);
}

struct auth_db *auth_db_new(void)
{
    struct auth_db *db = xcalloc(1, sizeof *db);

    hmap_init(&db->users);
    hmap_init(&db->vhosts);
    hmap_init(&db->global_parameters);
    return db;
}

void auth_db_free(struct auth_db *db)
{
    void *v;

    if (db == NULL)
        return;
    for (size_t i = 0; hmap_next(&db->users, &i, &v);)
        user_free(v);
    hmap_free(&db->users);
    for (size_t i = 0; hmap_next(&db->vhosts, &i, &v);)
        vhost_free_entry(v);
    hmap_free(&db->vhosts);
    for (size_t i = 0; hmap_next(&db->global_parameters, &i, &v);)
        global_parameter_free(v);
    hmap_free(&db->global_parameters);
    free(db);
}

/* ---- Users ----------------------------------------------------------------------------- */

struct auth_user *auth_user_find(const struct auth_db *db, struct wire_bytes name)
{
    return hmap_get(&db->users, name);
}

static struct auth_user *user_get_or_create(struct auth_db *db, const char *name)
{
    struct auth_user *u = auth_user_find(db, name_bytes(name));

    if (u != NULL)
        return u;
    u = xcalloc(1, sizeof *u);
    u->name = xstrdup(name);
    u->algorithm = AUTH_HASH_SHA256;
    u->max_connections = -1;
    u->max_channels = -1;
    hmap_init(&u->permissions);
    hmap_init(&u->topic_permissions);
    hmap_put(&db->users, name_bytes(u->name), u);
    return u;
}

static int hash_new_password(struct auth_user *u, struct wire_bytes password, char *err,
                             size_t err_size)
{
    uint8_t salt[AUTH_SALT_BYTES];

    if (RAND_bytes(salt, sizeof salt) != 1) {
        set_err(err, err_size, "cannot draw a salt: the random generator failed");
        return -1;
    }
    u->algorithm = AUTH_HASH_SHA256;
    u->hash_len = auth_hash_password(AUTH_HASH_SHA256, salt, password, u->hash);
    return 0;
}

static void user_set_tags(struct auth_user *u, const char *const *tags, size_t tags_len)
{
    char **copy = strv_dup(tags, tags_len);

    strv_free(u->tags, u->tags_len);
    u->tags = copy;
    u->tags_len = tags_len;
}

int auth_user_put(struct auth_db *db, const char *name, const char *password,
                  const char *const *tags, size_t tags_len, char *err, size_t err_size)
{
    bool existed = auth_user_find(db, name_bytes(name)) != NULL;
    struct auth_user *u = user_get_or_create(db, name);

    if (password != NULL) {
        if (hash_new_password(u, wire_cstr(password), err, err_size) < 0) {
            if (!existed)
                user_free(hmap_remove(&db->users, name_bytes(name)));
            return -1;
        }
    } else {
        u->hash_len = 0;
    }
    user_set_tags(u, tags, tags_len);
    db->generation++;
    return 0;
}

int auth_user_put_hash(struct auth_db *db, const char *name, const char *password_hash_b64,
                       enum auth_hash_algorithm algorithm, char *err, size_t err_size)
{
    uint8_t hash[AUTH_HASH_MAX_BYTES];
    struct auth_user *u;
    int len;

    if ((size_t)algorithm >= ARRAY_LEN(algorithms)) {
        set_err(err, err_size, "unknown hashing algorithm");
        return -1;
    }
    if ((len = auth_base64_decode(password_hash_b64, hash, sizeof hash)) < 0) {
        set_err(err, err_size, "password_hash '%s' is not base64 of a password hash",
                password_hash_b64);
        return -1;
    }
    if (len != 0 && (size_t)len != auth_hash_length(algorithm)) {
        set_err(err, err_size,
                "password_hash holds %d bytes, %s needs %zu (4 of salt and the digest)", len,
                algorithms[algorithm].name, auth_hash_length(algorithm));
        return -1;
    }
    u = user_get_or_create(db, name);
    u->algorithm = algorithm;
    memcpy(u->hash, hash, (size_t)len);
    u->hash_len = (size_t)len;
    OPENSSL_cleanse(hash, sizeof hash);
    db->generation++;
    return 0;
}

int auth_user_set_password(struct auth_db *db, const char *name, struct wire_bytes password,
                           char *err, size_t err_size)
{
    struct auth_user *u = auth_user_find(db, name_bytes(name));

    if (u == NULL) {
        set_err(err, err_size, "user '%s' does not exist", name);
        return -1;
    }
    if (hash_new_password(u, password, err, err_size) < 0)
        return -1;
    db->generation++;
    return 0;
}

int auth_user_set_tags(struct auth_db *db, const char *name, const char *const *tags,
                       size_t tags_len)
{
    struct auth_user *u = auth_user_find(db, name_bytes(name));

    if (u == NULL)
        return -1;
    user_set_tags(u, tags, tags_len);
    db->generation++;
    return 0;
}

bool auth_user_has_tag(const struct auth_user *u, const char *tag)
{
    for (size_t i = 0; i < u->tags_len; i++) {
        if (strcmp(u->tags[i], tag) == 0)
            return true;
    }
    return false;
}

bool auth_may_claim_user_id(const struct auth_db *db, const char *user, struct wire_bytes claimed)
{
    const struct auth_user *u;

    if (wire_bytes_eq_cstr(claimed, user))
        return true;
    u = auth_user_find(db, wire_cstr(user));
    return u != NULL && auth_user_has_tag(u, "impersonator");
}

int auth_user_set_limits(struct auth_db *db, const char *name, int64_t max_connections,
                         int64_t max_channels)
{
    struct auth_user *u = auth_user_find(db, name_bytes(name));

    if (u == NULL)
        return -1;
    u->max_connections = max_connections;
    u->max_channels = max_channels;
    db->generation++;
    return 0;
}

int auth_user_delete(struct auth_db *db, const char *name)
{
    struct auth_user *u = hmap_remove(&db->users, name_bytes(name));

    if (u == NULL)
        return -1;
    user_free(u);
    db->generation++;
    return 0;
}

/* ---- Virtual hosts --------------------------------------------------------------------- */

struct auth_vhost *auth_vhost_find(const struct auth_db *db, struct wire_bytes name)
{
    return hmap_get(&db->vhosts, name);
}

struct auth_vhost *auth_vhost_put(struct auth_db *db, const char *name, const char *description,
                                  const char *const *tags, size_t tags_len,
                                  const char *default_queue_type)
{
    struct auth_vhost *vh = auth_vhost_find(db, name_bytes(name));
    char **tags_copy = strv_dup(tags, tags_len);

    if (vh == NULL) {
        vh = xcalloc(1, sizeof *vh);
        vh->name = xstrdup(name);
        vh->max_connections = -1;
        vh->max_queues = -1;
        hmap_put(&db->vhosts, name_bytes(vh->name), vh);
    }
    free(vh->description);
    vh->description = xstrdup(description != NULL ? description : "");
    strv_free(vh->tags, vh->tags_len);
    vh->tags = tags_copy;
    vh->tags_len = tags_len;
    free(vh->default_queue_type);
    vh->default_queue_type = default_queue_type != NULL ? xstrdup(default_queue_type) : NULL;
    db->generation++;
    return vh;
}

int auth_vhost_set_limits(struct auth_db *db, const char *name, int64_t max_connections,
                          int64_t max_queues)
{
    struct auth_vhost *vh = auth_vhost_find(db, name_bytes(name));

    if (vh == NULL)
        return -1;
    vh->max_connections = max_connections;
    vh->max_queues = max_queues;
    db->generation++;
    return 0;
}

int auth_vhost_delete(struct auth_db *db, const char *name)
{
    struct auth_vhost *vh = hmap_remove(&db->vhosts, name_bytes(name));
    void *v;

    if (vh == NULL)
        return -1;
    for (size_t i = 0; hmap_next(&db->users, &i, &v);) {
        struct auth_user *u = v;
        struct auth_permission *perm = hmap_remove(&u->permissions, name_bytes(name));
        struct auth_topic_vhost *tv = hmap_remove(&u->topic_permissions, name_bytes(name));

        if (perm != NULL)
            permission_free(perm);
        if (tv != NULL)
            topic_vhost_free(tv);
    }
    vhost_free_entry(vh);
    db->generation++;
    return 0;
}

static int compare_user_names(const void *a, const void *b)
{
    return strcmp((*(const struct auth_user *const *)a)->name,
                  (*(const struct auth_user *const *)b)->name);
}

static int compare_vhost_names(const void *a, const void *b)
{
    return strcmp((*(const struct auth_vhost *const *)a)->name,
                  (*(const struct auth_vhost *const *)b)->name);
}

/* The values of m in an array sorted with compare. */
static void *sorted_values(const struct hmap *m, size_t *len,
                           int (*compare)(const void *, const void *))
{
    void **out = xcalloc(m->len > 0 ? m->len : 1, sizeof *out);
    size_t n = 0;
    void *v;

    for (size_t i = 0; hmap_next(m, &i, &v);)
        out[n++] = v;
    qsort(out, n, sizeof *out, compare);
    *len = n;
    return out;
}

const struct auth_user **auth_users_sorted(const struct auth_db *db, size_t *len)
{
    return sorted_values(&db->users, len, compare_user_names);
}

const struct auth_vhost **auth_vhosts_sorted(const struct auth_db *db, size_t *len)
{
    return sorted_values(&db->vhosts, len, compare_vhost_names);
}

/* ---- Permissions ----------------------------------------------------------------------- */

/* Both must exist, as RabbitMQ's set_permissions requires. */
static struct auth_user *user_and_vhost(struct auth_db *db, const char *user, const char *vhost,
                                        char *err, size_t err_size)
{
    struct auth_user *u = auth_user_find(db, name_bytes(user));

    if (u == NULL) {
        set_err(err, err_size, "user '%s' does not exist", user);
        return NULL;
    }
    if (auth_vhost_find(db, name_bytes(vhost)) == NULL) {
        set_err(err, err_size, "virtual host '%s' does not exist", vhost);
        return NULL;
    }
    return u;
}

int auth_permission_set(struct auth_db *db, const char *user, const char *vhost,
                        const char *configure, const char *write, const char *read, char *err,
                        size_t err_size)
{
    struct auth_user *u = user_and_vhost(db, user, vhost, err, err_size);
    struct auth_permission *perm, *old;

    if (u == NULL)
        return -1;
    perm = xcalloc(1, sizeof *perm);
    if (auth_pattern_compile(&perm->configure, configure, err, err_size) < 0 ||
        auth_pattern_compile(&perm->write, write, err, err_size) < 0 ||
        auth_pattern_compile(&perm->read, read, err, err_size) < 0) {
        permission_free(perm);
        return -1;
    }
    perm->vhost = xstrdup(vhost);
    if ((old = hmap_remove(&u->permissions, name_bytes(vhost))) != NULL)
        permission_free(old);
    hmap_put(&u->permissions, name_bytes(perm->vhost), perm);
    db->generation++;
    return 0;
}

int auth_permission_clear(struct auth_db *db, const char *user, const char *vhost)
{
    struct auth_user *u = auth_user_find(db, name_bytes(user));
    struct auth_permission *perm;

    if (u == NULL || (perm = hmap_remove(&u->permissions, name_bytes(vhost))) == NULL)
        return -1;
    permission_free(perm);
    db->generation++;
    return 0;
}

const struct auth_permission *auth_permission_find(const struct auth_db *db, struct wire_bytes user,
                                                   struct wire_bytes vhost)
{
    const struct auth_user *u = auth_user_find(db, user);

    return u != NULL ? hmap_get(&u->permissions, vhost) : NULL;
}

bool auth_vhost_access(const struct auth_db *db, struct wire_bytes user, struct wire_bytes vhost)
{
    return auth_permission_find(db, user, vhost) != NULL;
}

bool auth_permission_allows(const struct auth_permission *perm, unsigned access,
                            enum auth_resource kind, struct wire_bytes name)
{
    if (perm == NULL)
        return false;
    /* "For convenience RabbitMQ maps AMQP 0-9-1's default exchange's blank name to
     * 'amq.default' when performing permission checks." */
    if (kind == AUTH_RESOURCE_EXCHANGE && name.len == 0)
        name = WIRE_BYTES_C("amq.default");
    if ((access & AUTH_CONFIGURE) && !auth_pattern_matches(&perm->configure, name))
        return false;
    if ((access & AUTH_WRITE) && !auth_pattern_matches(&perm->write, name))
        return false;
    if ((access & AUTH_READ) && !auth_pattern_matches(&perm->read, name))
        return false;
    return true;
}

bool auth_permitted(const struct auth_db *db, struct wire_bytes user, struct wire_bytes vhost,
                    unsigned access, enum auth_resource kind, struct wire_bytes name)
{
    return auth_permission_allows(auth_permission_find(db, user, vhost), access, kind, name);
}

enum operand { PRIMARY, SECONDARY };

struct auth_step {
    uint8_t access; /* 0 ends the list */
    uint8_t kind;
    uint8_t operand;
};

/* The table of auth.h as data, each operation's checks in the order RabbitMQ 3.10 makes
 * them (rabbit_channel: declare checks configure, then read on the new queue or exchange,
 * then write on its dead-letter or alternate exchange). */
static const struct auth_step op_steps[AUTH_OP_COUNT][3] = {
    [AUTH_OP_EXCHANGE_DECLARE] = {{AUTH_CONFIGURE, AUTH_RESOURCE_EXCHANGE, PRIMARY}},
    [AUTH_OP_EXCHANGE_DECLARE_AE] = {{AUTH_CONFIGURE, AUTH_RESOURCE_EXCHANGE, PRIMARY},
                                     {AUTH_READ, AUTH_RESOURCE_EXCHANGE, PRIMARY},
                                     {AUTH_WRITE, AUTH_RESOURCE_EXCHANGE, SECONDARY}},
    [AUTH_OP_EXCHANGE_DELETE] = {{AUTH_CONFIGURE, AUTH_RESOURCE_EXCHANGE, PRIMARY}},
    [AUTH_OP_QUEUE_DECLARE] = {{AUTH_CONFIGURE, AUTH_RESOURCE_QUEUE, PRIMARY}},
    [AUTH_OP_QUEUE_DECLARE_DLX] = {{AUTH_CONFIGURE, AUTH_RESOURCE_QUEUE, PRIMARY},
                                   {AUTH_READ, AUTH_RESOURCE_QUEUE, PRIMARY},
                                   {AUTH_WRITE, AUTH_RESOURCE_EXCHANGE, SECONDARY}},
    [AUTH_OP_QUEUE_DELETE] = {{AUTH_CONFIGURE, AUTH_RESOURCE_QUEUE, PRIMARY}},
    [AUTH_OP_QUEUE_BIND] = {{AUTH_WRITE, AUTH_RESOURCE_QUEUE, PRIMARY},
                            {AUTH_READ, AUTH_RESOURCE_EXCHANGE, SECONDARY}},
    [AUTH_OP_QUEUE_UNBIND] = {{AUTH_WRITE, AUTH_RESOURCE_QUEUE, PRIMARY},
                              {AUTH_READ, AUTH_RESOURCE_EXCHANGE, SECONDARY}},
    [AUTH_OP_EXCHANGE_BIND] = {{AUTH_WRITE, AUTH_RESOURCE_EXCHANGE, PRIMARY},
                               {AUTH_READ, AUTH_RESOURCE_EXCHANGE, SECONDARY}},
    [AUTH_OP_EXCHANGE_UNBIND] = {{AUTH_WRITE, AUTH_RESOURCE_EXCHANGE, PRIMARY},
                                 {AUTH_READ, AUTH_RESOURCE_EXCHANGE, SECONDARY}},
    [AUTH_OP_BASIC_PUBLISH] = {{AUTH_WRITE, AUTH_RESOURCE_EXCHANGE, PRIMARY}},
    [AUTH_OP_BASIC_GET] = {{AUTH_READ, AUTH_RESOURCE_QUEUE, PRIMARY}},
    [AUTH_OP_BASIC_CONSUME] = {{AUTH_READ, AUTH_RESOURCE_QUEUE, PRIMARY}},
    [AUTH_OP_QUEUE_PURGE] = {{AUTH_READ, AUTH_RESOURCE_QUEUE, PRIMARY}},
};

bool auth_check_op(const struct auth_db *db, struct wire_bytes user, struct wire_bytes vhost,
                   enum auth_op op, struct wire_bytes primary, struct wire_bytes secondary,
                   char *refusal, size_t refusal_size)
{
    const struct auth_permission *perm = auth_permission_find(db, user, vhost);

    assert((size_t)op < AUTH_OP_COUNT);
    for (size_t i = 0; i < 3 && op_steps[op][i].access != 0; i++) {
        const struct auth_step *step = &op_steps[op][i];
        struct wire_bytes name = step->operand == PRIMARY ? primary : secondary;

        if (!auth_permission_allows(perm, step->access, (enum auth_resource)step->kind, name)) {
            if (refusal != NULL)
                auth_refusal_text(refusal, refusal_size, (enum auth_resource)step->kind, name,
                                  vhost, user);
            return false;
        }
    }
    return true;
}

/* ---- Topic permissions ----------------------------------------------------------------- */

char *auth_expand_topic_pattern(const char *pattern, const char *username, const char *vhost,
                                const char *client_id)
{
    const struct {
        const char *placeholder;
        const char *value;
    } vars[] = {{"{username}", username}, {"{vhost}", vhost}, {"{client_id}", client_id}};
    struct sbuf b = {0};
    const char *s = pattern;

    sb_puts(&b, "");
    while (*s != '\0') {
        size_t i;

        for (i = 0; i < ARRAY_LEN(vars); i++) {
            size_t n = strlen(vars[i].placeholder);
            if (vars[i].value != NULL && strncmp(s, vars[i].placeholder, n) == 0) {
                sb_puts(&b, vars[i].value);
                s += n;
                break;
            }
        }
        if (i == ARRAY_LEN(vars))
            sb_putc(&b, *s++);
    }
    return b.p;
}

/* Compiles the raw pattern (so that an invalid one is refused as RabbitMQ refuses it) and
 * keeps the form expanded with username and vhost for matching. */
static int topic_pattern_compile(struct auth_pattern *p, bool *has_client_id, const char *raw,
                                 const char *user, const char *vhost, char *err, size_t err_size)
{
    char *expanded;
    int rc;

    if (auth_pattern_compile(p, raw, err, err_size) < 0)
        return -1;
    auth_pattern_free(p);
    expanded = auth_expand_topic_pattern(raw, user, vhost, NULL);
    rc = pattern_compile_from(p, raw, expanded, err, err_size);
    *has_client_id = strstr(expanded, "{client_id}") != NULL;
    free(expanded);
    return rc;
}

int auth_topic_permission_set(struct auth_db *db, const char *user, const char *vhost,
                              const char *exchange, const char *write, const char *read, char *err,
                              size_t err_size)
{
    struct auth_user *u = user_and_vhost(db, user, vhost, err, err_size);
    struct auth_topic_permission *tp, *old;
    struct auth_topic_vhost *tv;

    if (u == NULL)
        return -1;
    tp = xcalloc(1, sizeof *tp);
    if (topic_pattern_compile(&tp->write, &tp->write_has_client_id, write, user, vhost, err,
                              err_size) < 0 ||
        topic_pattern_compile(&tp->read, &tp->read_has_client_id, read, user, vhost, err,
                              err_size) < 0) {
        topic_permission_free(tp);
        return -1;
    }
    tp->exchange = xstrdup(exchange);
    if ((tv = hmap_get(&u->topic_permissions, name_bytes(vhost))) == NULL) {
        tv = xcalloc(1, sizeof *tv);
        tv->vhost = xstrdup(vhost);
        hmap_init(&tv->exchanges);
        hmap_put(&u->topic_permissions, name_bytes(tv->vhost), tv);
    }
    if ((old = hmap_remove(&tv->exchanges, name_bytes(exchange))) != NULL)
        topic_permission_free(old);
    hmap_put(&tv->exchanges, name_bytes(tp->exchange), tp);
    db->generation++;
    return 0;
}

int auth_topic_permission_clear(struct auth_db *db, const char *user, const char *vhost,
                                const char *exchange)
{
    struct auth_user *u = auth_user_find(db, name_bytes(user));
    struct auth_topic_vhost *tv;
    struct auth_topic_permission *tp;

    if (u == NULL || (tv = hmap_get(&u->topic_permissions, name_bytes(vhost))) == NULL)
        return -1;
    if (exchange != NULL) {
        if ((tp = hmap_remove(&tv->exchanges, name_bytes(exchange))) == NULL)
            return -1;
        topic_permission_free(tp);
    }
    if (exchange == NULL || tv->exchanges.len == 0)
        topic_vhost_free(hmap_remove(&u->topic_permissions, name_bytes(vhost)));
    db->generation++;
    return 0;
}

const struct auth_topic_permission *auth_topic_permission_find(const struct auth_db *db,
                                                               struct wire_bytes user,
                                                               struct wire_bytes vhost,
                                                               struct wire_bytes exchange)
{
    const struct auth_user *u = auth_user_find(db, user);
    const struct auth_topic_vhost *tv;

    if (u == NULL || (tv = hmap_get(&u->topic_permissions, vhost)) == NULL)
        return NULL;
    return hmap_get(&tv->exchanges, exchange);
}

bool auth_topic_permitted(const struct auth_db *db, struct wire_bytes user, struct wire_bytes vhost,
                          struct wire_bytes exchange, unsigned access,
                          struct wire_bytes routing_key, const char *client_id)
{
    const struct auth_topic_permission *tp = auth_topic_permission_find(db, user, vhost, exchange);
    const struct auth_pattern *p;
    struct auth_pattern per_client;
    char *expanded, *uname, *vname;
    bool has_client_id, ok;

    if (tp == NULL)
        return true; /* topic authorisation is opt-in, per exchange */
    assert(access == AUTH_WRITE || access == AUTH_READ);
    p = access == AUTH_WRITE ? &tp->write : &tp->read;
    has_client_id = access == AUTH_WRITE ? tp->write_has_client_id : tp->read_has_client_id;
    if (client_id == NULL || !has_client_id)
        return auth_pattern_matches(p, routing_key);
    /* {client_id} changes per connection: expand and compile for this check. */
    uname = xstrndup_bytes(user);
    vname = xstrndup_bytes(vhost);
    expanded = auth_expand_topic_pattern(p->source, uname, vname, client_id);
    ok = pattern_compile_from(&per_client, p->source, expanded, NULL, 0) == 0 &&
         auth_pattern_matches(&per_client, routing_key);
    auth_pattern_free(&per_client);
    free(expanded);
    free(vname);
    free(uname);
    return ok;
}

/* ---- Refusal texts --------------------------------------------------------------------- */

void auth_refusal_text(char *out, size_t size, enum auth_resource kind, struct wire_bytes name,
                       struct wire_bytes vhost, struct wire_bytes user)
{
    if (kind == AUTH_RESOURCE_EXCHANGE && name.len == 0)
        name = WIRE_BYTES_C("amq.default");
    snprintf(out, size, "access to %s '%.*s' in vhost '%.*s' refused for user '%.*s'",
             kind == AUTH_RESOURCE_QUEUE ? "queue" : "exchange", (int)name.len,
             (const char *)name.ptr, (int)vhost.len, (const char *)vhost.ptr, (int)user.len,
             (const char *)user.ptr);
}

void auth_topic_refusal_text(char *out, size_t size, struct wire_bytes routing_key,
                             struct wire_bytes exchange, struct wire_bytes vhost,
                             struct wire_bytes user)
{
    snprintf(out, size,
             "access to topic '%.*s' in exchange '%.*s' in vhost '%.*s' refused for user '%.*s'",
             (int)routing_key.len, (const char *)routing_key.ptr, (int)exchange.len,
             (const char *)exchange.ptr, (int)vhost.len, (const char *)vhost.ptr, (int)user.len,
             (const char *)user.ptr);
}

void auth_vhost_refusal_text(char *out, size_t size, struct wire_bytes vhost,
                             struct wire_bytes user)
{
    snprintf(out, size, "access to vhost '%.*s' refused for user '%.*s'", (int)vhost.len,
             (const char *)vhost.ptr, (int)user.len, (const char *)user.ptr);
}

/* ---- Global parameters ---------------------------------------------------------------- */

int auth_global_parameter_set(struct auth_db *db, const char *name, const char *value_json)
{
    struct auth_global_parameter *g = hmap_get(&db->global_parameters, name_bytes(name));

    db->generation++;
    if (g != NULL) {
        free(g->value_json);
        g->value_json = xstrdup(value_json);
        return 0;
    }
    g = xcalloc(1, sizeof *g);
    g->name = xstrdup(name);
    g->value_json = xstrdup(value_json);
    hmap_put(&db->global_parameters, name_bytes(g->name), g);
    return 1;
}

int auth_global_parameter_clear(struct auth_db *db, const char *name)
{
    struct auth_global_parameter *g = hmap_remove(&db->global_parameters, name_bytes(name));

    if (g == NULL)
        return -1;
    db->generation++;
    global_parameter_free(g);
    return 0;
}

const struct auth_global_parameter *auth_global_parameter_find(const struct auth_db *db,
                                                               struct wire_bytes name)
{
    return hmap_get(&db->global_parameters, name);
}

static int compare_global_parameter_names(const void *a, const void *b)
{
    return strcmp((*(const struct auth_global_parameter *const *)a)->name,
                  (*(const struct auth_global_parameter *const *)b)->name);
}

const struct auth_global_parameter **auth_global_parameters_sorted(const struct auth_db *db,
                                                                   size_t *len)
{
    return sorted_values(&db->global_parameters, len, compare_global_parameter_names);
}

/* ---- Defaults -------------------------------------------------------------------------- */

int auth_ensure_default(struct auth_db *db, const char *user, const char *password,
                        const char *vhost, char *err, size_t err_size)
{
    static const char *const admin[] = {"administrator"};

    /* RabbitMQ inserts its default data only on a blank node: no vhost, no user. */
    if (db->users.len != 0 || db->vhosts.len != 0)
        return 0;
    auth_vhost_put(db, vhost, "Default virtual host", NULL, 0, NULL);
    if (auth_user_put(db, user, password, admin, 1, err, err_size) < 0 ||
        auth_permission_set(db, user, vhost, ".*", ".*", ".*", err, err_size) < 0) {
        auth_user_delete(db, user);
        auth_vhost_delete(db, vhost);
        return -1;
    }
    log_info(NULL, "created the default user '%s' and vhost '%s'", user, vhost);
    return 1;
}
