/* Helpers the replication tests share: temporary directories, file copies and byte-for-byte
 * comparison of two data directories (the msgs segments and defs.log). Header-only, static. */
#ifndef WARREN_TESTS_UNIT_CHECK_REPL_UTIL_H
#define WARREN_TESTS_UNIT_CHECK_REPL_UTIL_H

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static __attribute__((unused)) int repl_test_rm_one(const char *path, const struct stat *sb,
                                                    int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static __attribute__((unused)) void repl_test_rm_rf(const char *path)
{
    nftw(path, repl_test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory under $TMPDIR (or /tmp) named after prefix. */
static __attribute__((unused)) void repl_test_mkdtemp(char *out, size_t out_size,
                                                      const char *prefix)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(out, out_size, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
    ck_assert_ptr_nonnull(mkdtemp(out));
}

/* The whole file (NULL if it does not exist); *len receives its size. */
static __attribute__((unused)) uint8_t *repl_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data;
    long n;

    *len = 0;
    if (f == NULL)
        return NULL;
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    data = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(data);
    ck_assert_uint_eq(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return data;
}

static __attribute__((unused)) void repl_test_write_file(const char *path, const void *data,
                                                         size_t len)
{
    FILE *f = fopen(path, "wb");

    ck_assert_msg(f != NULL, "cannot create %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static __attribute__((unused)) void repl_test_copy_file(const char *from, const char *to)
{
    size_t len;
    uint8_t *data = repl_test_read_file(from, &len);

    ck_assert_msg(data != NULL, "cannot read %s", from);
    repl_test_write_file(to, data, len);
    free(data);
}

/* Sorted names of the NNNNNNNN.seg files in dir/msgs; returns how many (at most max). */
static __attribute__((unused)) size_t repl_test_list_segs(const char *dir, char names[][16],
                                                          size_t max)
{
    char path[600];
    DIR *d;
    struct dirent *e;
    size_t n = 0;

    snprintf(path, sizeof(path), "%s/msgs", dir);
    if ((d = opendir(path)) == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len != 12 || strcmp(e->d_name + 8, ".seg") != 0)
            continue;
        ck_assert_uint_lt(n, max);
        snprintf(names[n++], 16, "%s", e->d_name);
    }
    closedir(d);
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char t[16];
            memcpy(t, names[j], 16);
            memcpy(names[j], names[j - 1], 16);
            memcpy(names[j - 1], t, 16);
        }
    }
    return n;
}

static __attribute__((unused)) void repl_test_assert_same_file(const char *a, const char *b)
{
    size_t la, lb;
    uint8_t *da = repl_test_read_file(a, &la);
    uint8_t *db = repl_test_read_file(b, &lb);

    ck_assert_msg((da == NULL) == (db == NULL), "%s and %s: only one exists", a, b);
    ck_assert_msg(la == lb, "%s has %zu bytes, %s has %zu", a, la, b, lb);
    if (la > 0 && memcmp(da, db, la) != 0) {
        size_t i = 0;
        while (da[i] == db[i])
            i++;
        ck_abort_msg("%s and %s differ at offset %zu", a, b, i);
    }
    free(da);
    free(db);
}

/* dir_a and dir_b hold the same segments and definitions log, byte for byte. Returns the
 * number of segments. */
static __attribute__((unused)) size_t repl_test_assert_same_dirs(const char *dir_a,
                                                                 const char *dir_b)
{
    static char na[4096][16], nb[4096][16];
    size_t ca = repl_test_list_segs(dir_a, na, 4096);
    size_t cb = repl_test_list_segs(dir_b, nb, 4096);
    char pa[700], pb[700];

    ck_assert_msg(ca == cb, "%s has %zu segments, %s has %zu", dir_a, ca, dir_b, cb);
    for (size_t i = 0; i < ca; i++) {
        ck_assert_str_eq(na[i], nb[i]);
        snprintf(pa, sizeof(pa), "%s/msgs/%s", dir_a, na[i]);
        snprintf(pb, sizeof(pb), "%s/msgs/%s", dir_b, nb[i]);
        repl_test_assert_same_file(pa, pb);
    }
    snprintf(pa, sizeof(pa), "%s/defs.log", dir_a);
    snprintf(pb, sizeof(pb), "%s/defs.log", dir_b);
    repl_test_assert_same_file(pa, pb);
    return ca;
}

#endif
