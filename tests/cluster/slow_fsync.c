/* An LD_PRELOAD shim for the cluster fault tests: a disk that stalls on command. While the
 * file named by WARREN_SLOW_FSYNC_FILE exists and holds a number of milliseconds, every
 * fsync and fdatasync of the process sleeps that long first (checked at each call, so a test
 * can slow a node's disk and heal it while the node runs). Without the variable or the file,
 * the calls go straight through. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long delay_ms(void)
{
    const char *path = getenv("WARREN_SLOW_FSYNC_FILE");
    FILE *f;
    long ms = 0;

    if (path == NULL || (f = fopen(path, "r")) == NULL)
        return 0;
    if (fscanf(f, "%ld", &ms) != 1)
        ms = 0;
    fclose(f);
    return ms;
}

static void stall(void)
{
    long ms = delay_ms();
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    if (ms > 0)
        nanosleep(&ts, NULL);
}

int fsync(int fd)
{
    static int (*real)(int);

    if (real == NULL)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    stall();
    return real(fd);
}

int fdatasync(int fd)
{
    static int (*real)(int);

    if (real == NULL)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    stall();
    return real(fd);
}
