/* Replays fuzz inputs through LLVMFuzzerTestOneInput() without libFuzzer, so that `make check`
 * runs every corpus file and an input that once crashed a target keeps failing the build
 * until it is fixed. Linked with each fuzz target when configured without --enable-fuzzing.
 *
 *   fuzz_<entry> [-flag ...] [FILE|DIR ...]
 *
 * Files are run as they are, directories file by file (hidden files skipped, in name order).
 * Without a path it replays $FUZZ_CORPUS, else $top_srcdir/tests/fuzz/corpus/<entry>, where
 * <entry> is the program's name without "fuzz_" (make check exports top_srcdir). Arguments
 * starting with '-' are libFuzzer options and are ignored, so scripts can pass -runs=0 to
 * either kind of binary. Exits 1 if an input cannot be read or no input was found; a crash
 * in the target ends the process with the sanitizer's or the signal's status. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    long len;
    int rc = -1;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0)
        goto out;
    /* An exact-size copy, so that a read one byte past the input is caught by ASan. */
    data = malloc(len > 0 ? (size_t)len : 1);
    if (data == NULL || fread(data, 1, (size_t)len, f) != (size_t)len)
        goto out;
    LLVMFuzzerTestOneInput(data, (size_t)len);
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "replay: cannot read %s: %s\n", path, strerror(errno));
    free(data);
    if (f != NULL)
        fclose(f);
    return rc;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every file of dir; returns how many, or -1 on an error. */
static int replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int count = 0;

    if (d == NULL) {
        fprintf(stderr, "replay: cannot open %s: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = realloc(names, cap * sizeof *names);
            if (names == NULL)
                abort();
        }
        if ((names[n++] = strdup(e->d_name)) == NULL)
            abort();
    }
    closedir(d);
    qsort(names, n, sizeof *names, compare_names);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;

        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(path) != 0)
                count = -1;
            else if (count >= 0)
                count++;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

static int replay_path(const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode))
        return replay_dir(path);
    return replay_file(path) == 0 ? 1 : -1;
}

int main(int argc, char **argv)
{
    char fallback[4096];
    const char *name, *env;
    int total = 0, paths = 0, n;

    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            continue;
        paths++;
        if ((n = replay_path(argv[i])) < 0)
            return 1;
        total += n;
    }
    if (paths == 0) {
        name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
        if (strncmp(name, "fuzz_", 5) == 0)
            name += 5;
        if ((env = getenv("FUZZ_CORPUS")) != NULL && env[0] != '\0')
            snprintf(fallback, sizeof fallback, "%s", env);
        else
            snprintf(fallback, sizeof fallback, "%s/tests/fuzz/corpus/%s",
                     getenv("top_srcdir") ? getenv("top_srcdir") : ".", name);
        if ((n = replay_path(fallback)) < 0)
            return 1;
        total += n;
    }
    if (total == 0) {
        fprintf(stderr, "replay: no input found\n");
        return 1;
    }
    printf("replay: %d inputs ran without a crash\n", total);
    return 0;
}
